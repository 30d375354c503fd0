// hx.js: the dashboard's own small page-update script.  It reads the same hx-* attributes
// as htmx (https://htmx.org/reference/), but only the few the templates use, and keeps
// htmx's wire protocol (the HX-Request request header, the HX-Redirect answer header), so
// the server treats it as it treated htmx.  Plain modern JavaScript, no build step; it
// runs under the pages' Content-Security-Policy (script-src 'self': no eval, no inline
// script -- hx-vals is read with JSON.parse, never evaluated).
//
// What it supports -- anything else is reported on the console as an error, so a template
// that starts using more of htmx's language fails loudly instead of doing nothing
// (tests/server/web/test_hx_script.py also checks the templates against this list):
//
//   hx-get="URL" / hx-post="URL"  the request an element makes when triggered.  A GET sends
//       the element's values in the query string, a POST in an urlencoded body.  The
//       values: a form's fields when the element is a form; for a POST, also the fields
//       of the form the element sits in (as htmx); the element's own name=value (a
//       select); the forms or fields hx-include names; hx-vals last.
//   hx-trigger="EVENT, EVENT" | "every 1s" | "every 500ms"  what triggers it, the events
//       being click, change and submit (they bubble to it from inside).  Without it:
//       submit for a form, change for an input, select or text area, click for the rest.
//       "every" polls while the element is in the page (an outerHTML swap that brings a
//       new copy of it starts the copy's own polling; one without hx-trigger stops).
//   hx-target="#id" (any CSS selector) | "this" | "closest SEL" | "find SEL"  where the
//       answer goes; without it, the element itself.
//   hx-swap="innerHTML" (the default) | "outerHTML"  the target's content, or the target.
//   hx-push-url="true"  a successful GET's URL becomes a new history entry; going back
//       (or forward) to such an entry reloads its page from the server, which renders
//       the filters and the results for that URL.
//   hx-include="SELECTOR"  more forms or named fields whose values are sent.
//   hx-vals='{"name": "value"}'  values added to the request (JSON).
//
// Answers: HX-Redirect sends the browser to that page (the report that is built in the
// background, an expired session); a 2xx answer with a body is swapped in; 204 and
// errors swap nothing (as htmx: a page fragment answers 200 even when it shows a refusal).
// The CSRF token travels as every form's does: the hidden csrf field of the form the
// element posts, or hx-vals (server/web/session.py checks it).
(function () {
  "use strict";

  const VERBS = ["get", "post"];
  const ACTIVE = "[hx-get],[hx-post]";
  const SWAPS = ["innerHTML", "outerHTML"];
  const FIELD = "input,select,textarea";
  // The events the document listens for (see onEvent at the end).
  const EVENTS = ["click", "change", "submit"];

  // The request each element has in flight: a GET replaces the one before it (the answer
  // shown is always that of the latest filters), a POST is not sent twice at once.
  const inFlight = new WeakMap();
  // The elements whose "every" polling has started (a swap processes content once).
  const polling = new WeakSet();

  function fail(element, message) {
    // A template error, not a user's: said on the console, with the element.
    console.error("hx.js: " + message, element);
  }

  function verbOf(element) {
    const verb = VERBS.find((v) => element.hasAttribute("hx-" + v));
    return {verb: verb.toUpperCase(), url: element.getAttribute("hx-" + verb)};
  }

  function defaultTrigger(element) {
    if (element instanceof HTMLFormElement) { return "submit"; }
    return element.matches(FIELD) ? "change" : "click";
  }

  // hx-trigger parsed: {events: [names], every: milliseconds or null}.
  function triggersOf(element) {
    const spec = element.getAttribute("hx-trigger") || defaultTrigger(element);
    const triggers = {events: [], every: null};
    for (const part of spec.split(",").map((p) => p.trim()).filter(Boolean)) {
      const words = part.split(/\s+/);
      if (words[0] === "every" && words.length === 2) {
        const interval = /^(\d+)(ms|s)$/.exec(words[1]);
        if (interval) {
          triggers.every = Number(interval[1]) * (interval[2] === "s" ? 1000 : 1);
          continue;
        }
      }
      if (words.length !== 1 || !EVENTS.includes(words[0])) {
        // Other events (load, revealed, keyup, …), modifiers (changed, delay:, once,
        // from:, …) and filters are htmx's, not ours.
        fail(element, "unsupported hx-trigger " + JSON.stringify(part));
        continue;
      }
      triggers.events.push(words[0]);
    }
    return triggers;
  }

  function targetOf(element) {
    const spec = (element.getAttribute("hx-target") || "this").trim();
    let target;
    if (spec === "this") {
      target = element;
    } else if (spec.startsWith("closest ")) {
      target = element.closest(spec.slice(8));
    } else if (spec.startsWith("find ")) {
      target = element.querySelector(spec.slice(5));
    } else {
      target = document.querySelector(spec);
    }
    if (!target) { fail(element, "no element for hx-target " + JSON.stringify(spec)); }
    return target;
  }

  function swapOf(element) {
    const swap = (element.getAttribute("hx-swap") || "innerHTML").trim();
    if (!SWAPS.includes(swap)) {
      fail(element, "unsupported hx-swap " + JSON.stringify(swap));
      return null;
    }
    return swap;
  }

  // A named field's value as a form would send it (nothing for an unchecked box, a
  // disabled field or a nameless element).
  function addField(params, field) {
    if (!field.name || field.disabled || !field.matches(FIELD)) { return; }
    if ((field.type === "checkbox" || field.type === "radio") && !field.checked) { return; }
    if (field instanceof HTMLSelectElement && field.multiple) {
      for (const option of field.selectedOptions) { params.append(field.name, option.value); }
      return;
    }
    params.append(field.name, field.value);
  }

  // The request's values (see the header); null when hx-include or hx-vals is wrong.
  function valuesOf(element, verb, submitter) {
    const forms = new Set();
    const fields = [];
    if (element instanceof HTMLFormElement) {
      forms.add(element);
    } else {
      if (verb === "POST" && element.closest("form")) { forms.add(element.closest("form")); }
      fields.push(element);
    }
    const include = element.getAttribute("hx-include");
    if (include) {
      for (const included of document.querySelectorAll(include)) {
        if (included instanceof HTMLFormElement) {
          forms.add(included);
        } else if (included.matches(FIELD)) {
          fields.push(included);
        } else {
          fail(element, "hx-include names neither a form nor a field: " + include);
          return null;
        }
      }
    }
    const params = new URLSearchParams();
    for (const form of forms) {
      // The submit button that sent the form counts, as in a plain submit.
      const data = submitter && submitter.form === form ? new FormData(form, submitter)
        : new FormData(form);
      for (const [name, value] of data) { params.append(name, value); }
    }
    for (const field of fields) {
      // A field of a form already sent is not sent twice.
      if (!field.form || !forms.has(field.form)) { addField(params, field); }
    }
    const vals = element.getAttribute("hx-vals");
    if (vals) {
      let extra;
      try {
        extra = JSON.parse(vals);
      } catch (error) {
        fail(element, "hx-vals is not JSON: " + error.message);
        return null;
      }
      for (const [name, value] of Object.entries(extra)) { params.set(name, String(value)); }
    }
    return params;
  }

  // An answer's HTML as nodes (a <template> parses any fragment, table rows and list
  // items too, and runs none of its scripts).
  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return Array.from(template.content.childNodes);
  }

  function remember(url) {
    // The entry the page was loaded as is marked too, so that going back to it is ours.
    if (!(history.state && history.state.hx)) { history.replaceState({hx: true}, ""); }
    history.pushState({hx: true}, "", url);
  }

  // Sends the element's request and swaps the answer in.  Resolves when done (whether
  // anything was swapped or not); never rejects.
  async function issue(element, submitter) {
    const {verb, url} = verbOf(element);
    const target = targetOf(element);
    const swap = swapOf(element);
    const params = valuesOf(element, verb, submitter);
    if (!target || !swap || !params) { return; }
    const previous = inFlight.get(element);
    if (previous) {
      if (verb === "POST") { return; }  // a second click while the first is sent
      previous.abort();
    }
    const address = new URL(url, window.location.href);
    const init = {method: verb, headers: {"HX-Request": "true"}, credentials: "same-origin"};
    if (verb === "GET") {
      for (const [name, value] of params) { address.searchParams.append(name, value); }
    } else {
      init.body = params;  // application/x-www-form-urlencoded, as a form posts
    }
    const controller = new AbortController();
    init.signal = controller.signal;
    inFlight.set(element, controller);
    target.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(address, init);
      const redirect = response.headers.get("HX-Redirect");
      if (redirect) {
        window.location.href = redirect;
        return;
      }
      if (!response.ok) {
        console.error("hx.js: " + verb + " " + address.pathname + " answered " +
                      response.status);
        return;
      }
      if (response.status === 204) { return; }
      const nodes = fragment(await response.text());
      if (swap === "outerHTML") {
        target.replaceWith(...nodes);
      } else {
        target.replaceChildren(...nodes);
      }
      for (const node of nodes) {
        if (node instanceof Element) { process(node); }
      }
      if (verb === "GET" && element.getAttribute("hx-push-url") === "true") {
        remember(address.pathname + address.search);
      }
    } catch (error) {
      // An aborted request was replaced by a newer one: nothing to say.
      if (error.name !== "AbortError") { console.error("hx.js: " + error.message); }
    } finally {
      if (inFlight.get(element) === controller) { inFlight.delete(element); }
      target.removeAttribute("aria-busy");
    }
  }

  // Starts "every" polling for the element, which stops when it leaves the page.
  function poll(element, interval) {
    if (polling.has(element)) { return; }
    polling.add(element);
    const tick = async () => {
      if (!element.isConnected || !element.matches(ACTIVE)) { return; }
      await issue(element, null);
      if (element.isConnected) { window.setTimeout(tick, interval); }
    };
    window.setTimeout(tick, interval);
  }

  // What a newly shown part of the page needs beyond the document's listeners: polling.
  function process(root) {
    const elements = root.matches(ACTIVE) ? [root] : [];
    elements.push(...root.querySelectorAll(ACTIVE));
    for (const element of elements) {
      const every = triggersOf(element).every;
      if (every !== null) { poll(element, every); }
    }
  }

  // Events are handled where they arrive, the document, so content swapped in later works
  // without being wired: the nearest element with hx-get/hx-post that listens for it acts.
  function onEvent(event) {
    if (!(event.target instanceof Element)) { return; }
    if (event.type === "click" && (event.button !== 0 || event.ctrlKey || event.metaKey ||
                                   event.shiftKey || event.altKey)) {
      return;  // a link opened in a new tab or window: the browser's, with its href
    }
    let element = event.target.closest(ACTIVE);
    while (element && !triggersOf(element).events.includes(event.type)) {
      element = element.parentElement && element.parentElement.closest(ACTIVE);
    }
    if (!element) { return; }
    if (event.type === "submit" || event.type === "click") {
      event.preventDefault();  // no page load: the link's href or the form's action
    }
    issue(element, event.type === "submit" ? event.submitter : null);
  }

  for (const type of EVENTS) {
    document.addEventListener(type, onEvent);
  }
  window.addEventListener("popstate", (event) => {
    if (event.state && event.state.hx) { window.location.reload(); }
  });
  process(document.body);
})();
