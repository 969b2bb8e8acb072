// A follow-up mail's link (CONTRACT §8): the visitor's page with #sitechat-resume={ticket}. The widget
// trades the ticket for a new token of that chat (the old token stops working) and opens the chat.
// The fragment is taken off the address at once: it never reaches the site's server, and should not stay
// in the history or travel with an address the visitor copies.

import { callApi, sitePath } from './http.js';
import { clearQueue } from './outbox.js';
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

/**
 * Trade the ticket for the chat's new token; the chat then shows, open. A ticket that is refused (used
 * already — it works once — or expired) still opens the widget, as the visitor followed a link to it: on
 * the chat this browser has, if any, else on the start with a word on why it is not their chat.
 */
export async function resumeFromLink() {
  if (!ticket) return;
  const answer = await callApi(sitePath('/conversations/resume'), { ticket });
  ticket = null;
  state.openWhenRendered = true;
  if (answer.status !== 200 || !answer.body.token) {
    console.warn('sitechat: the link has expired or was used already', answer.status);
    // a refused ticket (403, or 422 for a mangled one), not a server that could not be reached
    state.linkRefused = !state.conversation && answer.status >= 400 && answer.status < 500;
    return;
  }
  const { conversation, token } = answer.body;
  const known = state.conversation && state.conversation.id === conversation.id ? state.conversation : null;
  // lines still unsent here belong to another chat, which this browser now leaves: never into this one
  if (!known) clearQueue();
  // the same chat in this browser keeps what it has shown; another one starts from its first message
  state.conversation = known
    ? { ...known, token, status: conversation.status }
    : { id: conversation.id, token, lastSeq: 0, status: conversation.status };
  saveState();
}
