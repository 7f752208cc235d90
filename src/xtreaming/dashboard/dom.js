// Small DOM helpers: build elements, and change text or attributes only when they differ (cheap re-renders).

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

export function setText(element, text) {
  const value = String(text);
  if (element.textContent !== value) element.textContent = value;
}

export function setAttr(element, name, value) {
  const text = String(value);
  if (element.getAttribute(name) !== text) element.setAttribute(name, text);
}

/** Set an input's value from the server unless the operator is editing it. */
export function setInput(input, value) {
  if (input.dataset.dirty === "1" || document.activeElement === input) return;
  const text = String(value);
  if (input.value !== text) input.value = text;
}

/** Mark an input as edited by the operator (the next poll leaves it alone) until `clean`. */
export function trackEdits(input) {
  input.addEventListener("input", () => {
    input.dataset.dirty = "1";
  });
}

export function clean(...inputs) {
  for (const input of inputs) {
    delete input.dataset.dirty;
    input.classList.remove("invalid");
  }
}
