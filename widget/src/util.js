/** JSON.parse that answers null for anything unparsable (storage and frames come from outside). */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A random RFC 4122 version-4 id, for client_msg_id. */
export function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID is missing on older browsers and on pages served over plain http
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
