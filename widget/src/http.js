// The widget HTTP API (CONTRACT §3).

import { state } from './state.js';

/**
 * GET path, or POST body as JSON when there is one, with the conversation's token when given.
 * Never throws: a network failure is {status: 0}. Answers {status, body, headers}; body is {} when
 * the answer was not JSON.
 */
export async function callApi(path, body, token) {
  const headers = {};
  if (body) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = 'Bearer ' + token;
  try {
    const response = await fetch(state.config.apiBase + path, {
      method: body ? 'POST' : 'GET',
      headers,
      body: body ? JSON.stringify(body) : null,
      credentials: 'omit', // the token is the only credential; the page's cookies are not ours
    });
    let json = null;
    try {
      json = await response.json();
    } catch {
      // an empty or non-JSON answer
    }
    return { status: response.status, body: json || {}, headers: response.headers };
  } catch {
    return { status: 0, body: {}, headers: new Headers() };
  }
}

/** The server's own words for a failed call, else our generic apology. */
export function errorText(answer) {
  return (answer.body.error && answer.body.error.message) || state.texts.error;
}

export function sitePath(suffix = '') {
  return `/api/v1/sites/${encodeURIComponent(state.config.siteId)}${suffix}`;
}

export function conversationPath(conversation, suffix) {
  return `/api/v1/conversations/${conversation.id}${suffix}`;
}
