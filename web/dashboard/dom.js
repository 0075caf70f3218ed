// Tiny DOM helpers: build elements and keep a keyed list of children in step with data, updating
// existing nodes in place (so a focused button is not replaced every second).

// h('button', {class: 'x', dataset: {id: 1}, onclick}, 'text', child...) → element.
export function h(tag, attrs = {}, ...children) {
  const ns = attrs.ns;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'ns' || v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Sets textContent only when it differs (no needless layout or screen-reader chatter).
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

export function setAttr(el, name, value) {
  if (value === null || value === undefined) el.removeAttribute(name);
  else if (el.getAttribute(name) !== String(value)) el.setAttribute(name, String(value));
}

// Makes `parent`'s children one node per item, in order: create(item) for new keys,
// update(node, item) for every item, removal of nodes whose key is gone. Nodes carry their key
// in `node.dataset.key`.
export function syncChildren(parent, items, keyOf, create, update) {
  const existing = new Map();
  for (const node of parent.children) existing.set(node.dataset.key, node);
  const keep = new Set();
  let cursor = parent.firstElementChild;
  for (const item of items) {
    const key = String(keyOf(item));
    keep.add(key);
    let node = existing.get(key);
    if (!node) {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (node !== cursor) parent.insertBefore(node, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const [key, node] of existing) if (!keep.has(key)) node.remove();
}
