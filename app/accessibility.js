() => {
  // Runs once per page (demo.launch(js=...)) and again, debounced, whenever Gradio redraws.
  // 1. ARIA fixes for Gradio's own markup; 2. alt text for images; 3. a text summary of every
  // plotly figure, built from the figure's own data, for screen readers; 4. Tab closes an open
  // dropdown.
  const clean = (s) => String(s ?? "").replace(/<br\s*\/?>/gi, " ").replace(/<[^>]*>/g, "")
    .replace(/\s+/g, " ").trim();
  const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3))
    : clean(v));
  const list = (a) => Array.from(a ?? []);

  function fixAria(root) {
    // empty placeholders carry aria-label on a plain div: give them a role that allows it
    root.querySelectorAll("div[aria-label]:not([role])").forEach((el) => {
      el.setAttribute("role", "img");
    });
    // the upload area's aria-label does not contain its visible text: let the text name it
    root.querySelectorAll(".upload-container[aria-label]").forEach((el) => {
      el.removeAttribute("aria-label");
    });
    // overlays: the alt text says what the image is, not only the caption
    root.querySelectorAll(".block").forEach((block) => {
      const label = clean(block.querySelector("[data-testid=block-label]")?.textContent);
      if (!label) return;
      block.querySelectorAll("img").forEach((img) => {
        const alt = img.getAttribute("alt") || "";
        if (!alt.startsWith(label)) img.setAttribute("alt", alt ? `${label}: ${alt}` : label);
      });
    });
  }

  // plotly fills a missing title with its editor's placeholder ("Click to enter Plot title"),
  // only hidden on screen: such text is no title
  const PLACEHOLDER = /^Click to enter .*(title|text)$/;
  function titleText(layout, t) {
    const text = clean(typeof t === "string" ? t : t?.text);
    const dflt = Object.values(layout?._dfltTitle ?? {}).map(clean);
    return text && !dflt.includes(text) && !PLACEHOLDER.test(text) ? text : "";
  }

  function axisTitle(layout, key) {
    return titleText(layout, layout?.[key]?.title);
  }

  function describeTrace(t) {
    const name = clean(t.name) || t.type;
    if (t.type === "heatmap") {
      const z = list(t.z).map(list);
      if (z.length * (z[0]?.length ?? 0) <= 16) {
        const xs = list(t.x), ys = list(t.y);
        const rows = z.map((r, i) => `${fmt(ys[i] ?? i)}: ` +
          r.map((v, j) => `${fmt(xs[j] ?? j)} ${fmt(v)}`).join(", "));
        return `${name}: ${rows.join("; ")}`;
      }
      const flat = z.flat().filter((v) => typeof v === "number" && !Number.isNaN(v));
      if (!flat.length) return `${name}: map with no values`;
      return `${name}: map of ${z.length} by ${z[0].length} cells, values from ` +
        `${fmt(Math.min(...flat))} to ${fmt(Math.max(...flat))}`;
    }
    if (t.type === "image") return `${name}: image`;
    const xs = list(t.x), ys = list(t.y);
    const n = Math.max(xs.length, ys.length);
    if (!n || (t.hoverinfo === "skip" && !t.showlegend)) return "";
    if (n <= 12) {
      return `${name}: ` + Array.from({ length: n }, (_, i) =>
        t.orientation === "h" ? `${fmt(ys[i])} ${fmt(xs[i])}` : `${fmt(xs[i])}: ${fmt(ys[i])}`)
        .join(", ");
    }
    const num = (a) => a.filter((v) => typeof v === "number" && !Number.isNaN(v));
    const nx = num(xs), ny = num(ys);
    const range = (a) => (a.length ? `${fmt(Math.min(...a))} to ${fmt(Math.max(...a))}` : "");
    return `${name}: ${n} points, x ${range(nx)}, y ${range(ny)}`;
  }

  function summarise(gd) {
    const layout = gd._fullLayout || gd.layout || {};
    const data = (gd._fullData || gd.data || []).filter((t) => t.visible !== false);
    const title = titleText(layout, layout.title);
    const panels = list(layout.annotations).map((a) => titleText(layout, a.text))
      .filter(Boolean);
    const traces = data.map(describeTrace).filter(Boolean);
    if (!title && !traces.length && panels.length) {
      return `Figure: ${panels.join("; ")}.`; // a placeholder saying why it is empty
    }
    const parts = [title ? `Figure: ${title}.` : "Figure."];
    if (panels.length) parts.push(`Labels: ${panels.join("; ")}.`);
    const x = axisTitle(layout, "xaxis"), y = axisTitle(layout, "yaxis");
    if (x || y) parts.push(`Axes: x ${x || "unlabelled"}, y ${y || "unlabelled"}.`);
    if (traces.length) parts.push(`Data: ${traces.join(". ")}.`);
    else parts.push("No data.");
    const text = parts.join(" ");
    return text.length > 2000 ? text.slice(0, 1997) + "..." : text;
  }

  function describePlots(root) {
    root.querySelectorAll(".js-plotly-plot").forEach((gd) => {
      const host = gd.parentElement;
      if (!host) return;
      let note = host.querySelector(":scope > .fm-sr-only");
      if (!note) {
        note = document.createElement("div");
        note.className = "fm-sr-only";
        note.id = `fm-fig-${Math.random().toString(36).slice(2, 10)}`;
        host.appendChild(note);
      }
      const text = summarise(gd);
      if (note.textContent !== text) note.textContent = text;
      if (gd.getAttribute("aria-describedby") !== note.id) {
        gd.setAttribute("role", "group");
        gd.setAttribute("aria-label", "Figure");
        gd.setAttribute("aria-describedby", note.id);
      }
      if (!gd.dataset.fmHooked && gd.on) {
        gd.dataset.fmHooked = "1";
        gd.on("plotly_afterplot", () => schedule());
      }
    });
  }

  // Gradio's dropdown reopens its list a tick after any key, also after the blur that Tab (or
  // the Shift before it) causes, and then leaves it open. Tab only moves the focus (its default
  // action, untouched), so it need not reach the dropdown; a list still open once the focus has
  // left gets the Escape that closes it.
  const isBox = (e) => e instanceof Element && e.matches("input[role=combobox]");
  window.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && isBox(e.target)) e.stopPropagation();
  }, true);
  document.addEventListener("focusout", (e) => {
    const box = e.target;
    if (!isBox(box)) return;
    setTimeout(() => {
      if (document.activeElement !== box && box.getAttribute("aria-expanded") === "true") {
        box.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
      }
    }, 60);
  }, true);

  let timer = null;
  function run() {
    timer = null;
    const root = document.querySelector("gradio-app") || document.body;
    fixAria(root);
    describePlots(root);
  }
  function schedule() {
    if (timer === null) timer = setTimeout(run, 250);
  }
  new MutationObserver(schedule).observe(document.body, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["aria-label", "alt", "src"],
  });
  schedule();
}
