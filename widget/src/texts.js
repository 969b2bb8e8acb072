// Every text the widget shows or gives as an accessible name, in English; the other languages come
// from the catalogue (bridge/texts/*/LC_MESSAGES/sitechat.po), built by widget/build.mjs into one small
// pack per language, fetched only when the visitor's language is not English (language.js).
// t(context, English) marks a text for the catalogue (`pybabel extract -k t:1c,2`); it is the English.
// A page may still change any text: window.SitechatTexts = {...} before the script, or
// data-texts='{"open":"Chat öffnen"}' on it (both win over every language).
// {name}-style placeholders are filled in by format().

import { parseJson } from './util.js';

const t = (_context, english) => english;

export const TEXTS = {
  open: t('widget.open', 'Open chat'),
  close: t('widget.close', 'Close chat'),
  minimise: t('widget.minimise', 'Minimise chat'),
  end: t('widget.end', 'End chat'),
  dialog: t('widget.dialog', 'Chat with {site}'),
  name: t('widget.name', 'Name'),
  email: t('widget.email', 'Email'),
  topic: t('widget.topic', 'Topic'),
  pickTopic: t('widget.pickTopic', 'Choose a topic'),
  start: t('widget.start', 'Start chat'),
  log: t('widget.log', 'Messages'),
  message: t('widget.message', 'Message'),
  placeholder: t('widget.placeholder', 'Type your message…'),
  send: t('widget.send', 'Send'),
  you: t('widget.you', 'You'),
  agent: t('widget.agent', 'Support'),
  sending: t('widget.sending', 'Sending…'),
  edited: t('widget.edited', '(edited)'),
  deleted: t('widget.deleted', 'Message deleted'),
  // under the visitor's last message someone in the team has read
  seen: t('widget.seen', 'Seen'),
  typing: t('widget.typing', '{name} is typing…'),
  reconnecting: t('widget.reconnecting', 'Reconnecting…'),
  retry: t('widget.retry', 'Retry'),
  error: t('widget.error', 'Something went wrong. Please try again.'),
  tooLong: t('widget.tooLong', 'Messages can be at most 4000 characters.'),
  ended: t('widget.ended', 'Conversation ended'),
  rate: t('widget.rate', 'How was this conversation?'),
  star: t('widget.star', '1 star'),
  stars: t('widget.stars', '{n} stars'),
  comment: t('widget.comment', 'Comment'),
  sendRating: t('widget.sendRating', 'Send rating'),
  pickScore: t('widget.pickScore', 'Please choose a rating first.'),
  thanks: t('widget.thanks', 'Thank you for your feedback!'),
  transcriptEmail: t('widget.transcriptEmail', 'Email for transcript'),
  sendTranscript: t('widget.sendTranscript', 'Email transcript'),
  transcriptSent: t('widget.transcriptSent', 'Transcript on its way'),
  newChat: t('widget.newChat', 'New chat'),
  offline: t('widget.offline', 'We are not online right now. Leave a message and we will answer by email.'),
  hours: t('widget.hours', 'Office hours: {hours}'),
  sendMessage: t('widget.sendMessage', 'Send message'),
  offlineSent: t('widget.offlineSent', 'Thank you! We received your message and will answer by email.'),
  unread1: t('widget.unread1', '1 new message'),
  unreadN: t('widget.unreadN', '{n} new messages'),
  // what a screen reader hears when a message arrives while the chat is open
  said: t('widget.said', '{name}: {text}'),
  // the bubble that invites the visitor to chat (the site's greeting is its button)
  invitation: t('widget.invitation', 'Chat invitation'),
  dismiss: t('widget.dismiss', 'Dismiss'),
  // the visitor's files (files.js)
  attach: t('widget.attach', 'Attach a file'),
  uploading: t('widget.uploading', 'Uploading {name}'),
  remove: t('widget.remove', 'Remove {name}'),
  stillUploading: t('widget.stillUploading', 'Your files are still uploading.'),
  fileTooLarge: t('widget.fileTooLarge', '{name} is too large to send.'),
  fileType: t('widget.fileType', '{name}: files of this type cannot be sent.'),
  tooManyFiles: t('widget.tooManyFiles', 'Too many files at once. Please try again shortly.'),
  // a follow-up mail's link opened a second time, or too late (resume.js)
  linkUsed: t('widget.linkUsed', 'This link has expired or was used already.'),
};

/** What the page says about our texts: window.SitechatTexts, then the script tag's data-texts. */
export function pageTexts(script) {
  return Object.assign({}, window.SitechatTexts, parseJson(script.dataset.texts));
}

/** The texts in a language: English, then the language's pack, then what the page says. */
export function textsIn(pack, page) {
  return Object.assign({}, TEXTS, pack, page);
}

/** format('{n} stars', {n: 3}) → '3 stars'; an unknown placeholder becomes empty. */
export function format(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (_, key) => values[key] ?? '');
}
