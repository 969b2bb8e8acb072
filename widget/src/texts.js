// Every text the widget shows or gives as an accessible name, in one place, in English.
// A page translates them (CONTRACT §6: "other languages translate the same names") with
// window.SitechatTexts = {...} before the script, or data-texts='{"open":"Chat öffnen"}' on it.
// {name}-style placeholders are filled in by format().

import { parseJson } from './util.js';

export const TEXTS = {
  open: 'Open chat',
  close: 'Close chat',
  minimise: 'Minimise chat',
  end: 'End chat',
  dialog: 'Chat with {site}',
  name: 'Name',
  email: 'Email',
  topic: 'Topic',
  pickTopic: 'Choose a topic',
  start: 'Start chat',
  log: 'Messages',
  message: 'Message',
  placeholder: 'Type your message…',
  send: 'Send',
  you: 'You',
  agent: 'Support',
  sending: 'Sending…',
  edited: '(edited)',
  deleted: 'Message deleted',
  typing: '{name} is typing…',
  reconnecting: 'Reconnecting…',
  retry: 'Retry',
  error: 'Something went wrong. Please try again.',
  tooLong: 'Messages can be at most 4000 characters.',
  ended: 'Conversation ended',
  rate: 'How was this conversation?',
  star: '1 star',
  stars: '{n} stars',
  comment: 'Comment',
  sendRating: 'Send rating',
  pickScore: 'Please choose a rating first.',
  thanks: 'Thank you for your feedback!',
  transcriptEmail: 'Email for transcript',
  sendTranscript: 'Email transcript',
  transcriptSent: 'Transcript on its way',
  newChat: 'New chat',
  offline: 'We are not online right now. Leave a message and we will answer by email.',
  hours: 'Office hours: {hours}',
  sendMessage: 'Send message',
  offlineSent: 'Thank you! We received your message and will answer by email.',
  unread1: '1 new message',
  unreadN: '{n} new messages',
  // what a screen reader hears when a message arrives while the chat is open
  said: '{name}: {text}',
};

/** The texts for this page: ours, then window.SitechatTexts, then the script tag's data-texts. */
export function textsFor(script) {
  return Object.assign({}, TEXTS, window.SitechatTexts, parseJson(script.dataset.texts));
}

/** format('{n} stars', {n: 3}) → '3 stars'; an unknown placeholder becomes empty. */
export function format(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (_, key) => values[key] ?? '');
}
