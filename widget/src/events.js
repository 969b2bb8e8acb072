// The page's subscriptions through window.Sitechat.on(event, fn): "message", "open", "close".

const subscribers = {};

/** Subscribe fn to event; returns the function that unsubscribes it. */
export function subscribe(event, fn) {
  (subscribers[event] = subscribers[event] || []).push(fn);
  return () => {
    subscribers[event] = subscribers[event].filter(f => f !== fn);
  };
}

/** Tell the page's subscribers; a failing subscriber is the page's problem, never the chat's. */
export function emit(event, payload) {
  for (const fn of subscribers[event] || []) {
    try {
      fn(payload);
    } catch (error) {
      console.error(error);
    }
  }
}
