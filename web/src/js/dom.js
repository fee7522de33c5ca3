// DOM helpers. Every piece of text goes in through textContent (via `h`),
// never through innerHTML: host names, process names and command lines come
// from agents and are untrusted.

/**
 * Creates an element. `attrs` keys: `class`, `dataset` (object), `on`
 * (object of event listeners), `text`, or any attribute / property name.
 * Children may be nodes, strings (added as text), null or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Removes every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** Sets textContent only when it changed (cheap live updates). */
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

/**
 * Keeps `parent`'s children in the order of `items`, one element per key:
 * creates the missing ones with `create(item)`, updates every one with
 * `update(el, item)`, removes those whose key went away, and moves an
 * element only when it is out of place, so that an element under the
 * pointer or holding focus stays the same node while values change.
 * `rows` is the caller's Map of key -> element, kept between calls.
 */
export function syncKeyed(parent, rows, items, keyOf, create, update) {
  const wanted = new Set();
  items.forEach((item, i) => {
    const key = keyOf(item);
    wanted.add(key);
    let el = rows.get(key);
    if (!el) {
      el = create(item);
      rows.set(key, el);
    }
    update(el, item);
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
  });
  for (const [key, el] of rows) {
    if (!wanted.has(key)) {
      el.remove();
      rows.delete(key);
    }
  }
}

/** Sets or removes an attribute only when it changed. */
export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}
