// The stylesheet in the shadow root, with the brand colour the page chose.

import css from './widget.css';

/**
 * Style the shadow root. Uses a constructed stylesheet (no inline style, so a page's CSP needs no
 * 'unsafe-inline' for us); answers a <style> element's markup for browsers without one.
 */
export function applyStyles(root, color) {
  const onBrand = inkOn(color);
  // a dark brand colour outlines focus in itself; on a light one the outline would vanish
  const focus = onBrand === '#fff' ? color : '#1f2328';
  const text = `${css}.widget{--brand:${color};--on-brand:${onBrand};--focus:${focus}}`;
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(text);
    root.adoptedStyleSheets = [sheet];
    return '';
  } catch {
    return `<style>${text}</style>`;
  }
}

/** Black or white, whichever contrasts more with the colour (WCAG relative luminance). */
function inkOn(color) {
  // the canvas turns any CSS colour into #rrggbb (or rgba() when transparent: then white)
  const canvas = document.createElement('canvas').getContext('2d');
  canvas.fillStyle = color;
  const hex = /^#(..)(..)(..)$/.exec(canvas.fillStyle);
  if (!hex) return '#fff';
  const [r, g, b] = hex.slice(1).map(channel => {
    const value = parseInt(channel, 16) / 255;
    return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 ? '#fff' : '#000';
}
