// A follow-up mail's link (CONTRACT §8): the visitor's page with #sitechat-resume={ticket}. The widget
// trades the ticket for a new token of that chat (the old token stops working) and opens the chat.
// The fragment is taken off the address at once: it never reaches the site's server, and should not stay
// in the history or travel with an address the visitor copies.

import { callApi, sitePath } from './http.js';
import { saveState, state } from './state.js';

const FRAGMENT = /^#sitechat-resume=([A-Za-z0-9_-]+\.[0-9]+\.[0-9a-f]+)$/;

let ticket = null;

/** Take the ticket off the page's address, before anything else reads it. */
export function takeResumeTicket() {
  const found = FRAGMENT.exec(location.hash);
  if (!found) return;
  ticket = found[1];
  try {
    history.replaceState(history.state, '', location.pathname + location.search);
  } catch {
    // a sandboxed page: the fragment stays, the chat resumes all the same
  }
}

/** Trade the ticket for the chat's new token; the chat then shows, open. */
export async function resumeFromLink() {
  if (!ticket) return;
  const answer = await callApi(sitePath('/conversations/resume'), { ticket });
  ticket = null;
  if (answer.status !== 200 || !answer.body.token) {
    console.warn('sitechat: the link has expired or was used already', answer.status);
    return;
  }
  const { conversation, token } = answer.body;
  const known = state.conversation && state.conversation.id === conversation.id ? state.conversation : null;
  // the same chat in this browser keeps what it has shown; another one starts from its first message
  state.conversation = known
    ? { ...known, token, status: conversation.status }
    : { id: conversation.id, token, lastSeq: 0, status: conversation.status };
  saveState();
  state.openWhenRendered = true;
}
