"""Scripts that edit a loaded page before a screenshot, as phishing kits, consent tools and broken copies do.

Each script marks what it adds with ``data-quaid-injected`` and keeps what it
replaces in ``data-quaid-original`` (``src`` in ``data-quaid-src``), so one
undo script (:data:`UNDO`) puts the page back for the next screenshot.
"""

from __future__ import annotations

# A cookie-consent dialog centred over a dimmed backdrop, as consent tools (OneTrust, Cookiebot, Quantcast
# Choice) draw it. Styles: a light card, a dark card, a wide sheet with a preferences list.
CONSENT_STYLES = ("light-card", "dark-card", "wide-sheet")
CONSENT_MODAL = """([style, title, text, dim]) => {
  const backdrop = document.createElement('div');
  backdrop.dataset.quaidInjected = '1';
  backdrop.style.cssText = 'position:fixed;inset:0;z-index:2147483646;display:flex;align-items:center;' +
    `justify-content:center;background:rgba(0,0,0,${dim});`;
  const dark = style === 'dark-card', wide = style === 'wide-sheet';
  const box = document.createElement('div');
  box.style.cssText = `width:${wide ? '72%' : '440px'};max-width:92%;box-sizing:border-box;padding:28px;` +
    `border-radius:${wide ? 4 : 12}px;background:${dark ? '#1e1f24' : '#fff'};` +
    `color:${dark ? '#eee' : '#222'};font:15px/1.5 sans-serif;box-shadow:0 8px 40px rgba(0,0,0,.4);`;
  const h = document.createElement('div');
  h.textContent = title; h.style.cssText = 'font:bold 20px sans-serif;margin-bottom:12px;';
  const p = document.createElement('p'); p.textContent = text; p.style.margin = '0 0 18px';
  box.append(h, p);
  if (wide) {
    for (const name of ['Strictly necessary', 'Performance', 'Functional', 'Targeting']) {
      const row = document.createElement('div'); row.textContent = name + '  \u2713';
      row.style.cssText = 'padding:8px 0;border-top:1px solid #ddd;';
      box.append(row);
    }
  }
  const buttons = document.createElement('div');
  buttons.style.cssText = 'display:flex;gap:12px;justify-content:flex-end;margin-top:16px;';
  for (const [label, filled] of [['Reject all', false], ['Accept all', true]]) {
    const b = document.createElement('button'); b.textContent = label;
    b.style.cssText = 'font:bold 15px sans-serif;padding:10px 20px;border-radius:6px;' +
      (filled ? 'background:#1a73e8;color:#fff;border:0;' : 'background:transparent;border:1px solid #888;' +
       `color:${dark ? '#eee' : '#222'};`);
    buttons.append(b);
  }
  box.append(buttons); backdrop.append(box); document.body.append(backdrop);
}"""

# Another page's title and first paragraphs put into this page: a sibling of the page that shares its
# template and the rest of its body. Returns how many elements were replaced (0: no heading).
REPLACE_TITLE_AND_SUMMARY = """([title, paragraphs]) => {
  const h = document.querySelector('h1') || document.querySelector('h2');
  if (!h) return 0;
  h.dataset.quaidOriginal = h.innerHTML; h.textContent = title;
  const after = [...document.querySelectorAll('p, dd, .refpurpose')].filter(
    (p) => (h.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING) && p.textContent.trim());
  let replaced = 1;
  for (const [i, text] of paragraphs.entries()) {
    if (!after[i]) break;
    after[i].dataset.quaidOriginal = after[i].innerHTML; after[i].textContent = text; replaced += 1;
  }
  return replaced;
}"""

# Images that did not load (a copy that hot-links the original's assets, which are gone): every <img>
# points to a missing file, so the browser draws its broken-image icon and alt text; CSS background
# pictures are dropped. Resolves to the number of pictures removed, once every <img> has failed.
BREAK_IMAGES = """async () => {
  const images = [...document.images].filter((i) => i.getAttribute('src'));
  const failed = images.map((i) => new Promise((done) => {
    i.addEventListener('error', done, {once: true}); i.addEventListener('load', done, {once: true});
    setTimeout(done, 1500);
  }));
  for (const i of images) {
    i.dataset.quaidSrc = i.getAttribute('src');
    if (i.srcset) { i.dataset.quaidSrcset = i.srcset; i.removeAttribute('srcset'); }
    i.setAttribute('src', 'quaid-missing-' + i.dataset.quaidSrc.split('/').pop());
  }
  let backgrounds = 0;
  for (const e of document.querySelectorAll('body *')) {
    if (getComputedStyle(e).backgroundImage.includes('url(')) {
      e.dataset.quaidBackground = e.style.backgroundImage || ' ';
      e.style.backgroundImage = 'none'; backgrounds += 1;
    }
  }
  await Promise.all(failed);
  return images.length + backgrounds;
}"""

UNDO = """() => {
  document.querySelectorAll('[data-quaid-injected]').forEach((e) => e.remove());
  document.querySelectorAll('[data-quaid-original]').forEach((e) => {
    e.innerHTML = e.dataset.quaidOriginal; delete e.dataset.quaidOriginal;
  });
  document.querySelectorAll('[data-quaid-src]').forEach((e) => {
    e.setAttribute('src', e.dataset.quaidSrc); delete e.dataset.quaidSrc;
    if (e.dataset.quaidSrcset) { e.srcset = e.dataset.quaidSrcset; delete e.dataset.quaidSrcset; }
  });
  document.querySelectorAll('[data-quaid-background]').forEach((e) => {
    e.style.backgroundImage = e.dataset.quaidBackground.trim(); delete e.dataset.quaidBackground;
  });
  window.scrollTo(0, 0);
}"""
