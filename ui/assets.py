"""The chat's stylesheet and the small scripts it runs in the browser (no user data is ever put in them)."""

CSS = """
#qa-header h1 { margin: 0 0 .2rem 0; font-size: 1.6rem; }
#qa-header p { margin: 0; color: var(--body-text-color-subdued); }
.qa-status { font-size: .9rem; color: var(--body-text-color-subdued); padding: .15rem .25rem; }
.qa-status strong { color: inherit; }
.qa-backend strong { color: var(--body-text-color); }
.qa-hint { color: var(--body-text-color-subdued); }
.qa-notice, .qa-error { color: #8a4b00; background: #fff4e0; border: 1px solid #f0c36d;
  border-radius: 6px; padding: .35rem .6rem; margin-top: .3rem; }
.dark .qa-notice, .dark .qa-error { color: #ffd89a; background: #3a2a0c; border-color: #8a6a20; }
.qa-ok { color: #1d5e2c; background: #e9f7ee; border: 1px solid #9fd3ae; border-radius: 6px;
  padding: .35rem .6rem; margin-top: .3rem; }
.dark .qa-ok { color: #b6f0c5; background: #12301c; border-color: #2f6b40; }
.qa-error { color: #8b1a1a; background: #fdecec; border-color: #e7a3a3; }
.dark .qa-error { color: #ffb4b4; background: #3b1414; border-color: #8b3a3a; }
.qa-sources { font-size: .95rem; line-height: 1.6; padding: 0 .75rem .25rem; max-height: 620px; overflow-y: auto; }
.qa-sources-title { font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .05em;
  color: var(--body-text-color-subdued); margin-bottom: .5rem; padding-top: .4rem; }
.qa-empty { color: var(--body-text-color-subdued); }
.qa-doc + .qa-doc { margin-top: 1rem; border-top: 1px solid var(--border-color-primary); padding-top: .75rem; }
.qa-doc-title { font-weight: 600; margin-bottom: .4rem; overflow-wrap: anywhere; position: sticky; top: 0;
  z-index: 1; padding: .2rem 0; background: var(--block-background-fill);
  border-bottom: 1px solid var(--border-color-primary); }
.qa-doc-refs { font-weight: 400; color: var(--body-text-color-subdued); }
.qa-doc-meta { font-weight: 400; font-size: .85rem; color: var(--body-text-color-subdued); word-break: normal; }
.qa-doc-meta a { color: #b7791f; }
.qa-doc-id { font-weight: 400; font-size: .75rem; color: var(--body-text-color-subdued); }
.qa-doc-text { white-space: pre-wrap; overflow-wrap: anywhere; }
mark.qa-cite { background: rgba(255, 200, 40, .45); color: inherit; border-radius: 3px;
  padding: 0 .15rem; box-shadow: 0 0 0 1px rgba(200, 140, 0, .35); scroll-margin: 4rem; }
mark.qa-cite.qa-flash { animation: qa-flash 1.2s ease-out; }
@keyframes qa-flash { from { background: rgba(255, 140, 0, .9); } to { background: rgba(255, 200, 40, .45); } }
sup.qa-num { display: inline-block; min-width: 1.15rem; margin-right: .25rem; padding: 0 .25rem;
  border-radius: 999px; background: #b7791f; color: #fff; font-size: .7rem; font-weight: 700;
  line-height: 1.15rem; text-align: center; vertical-align: super; }
.qa-gap { color: var(--body-text-color-subdued); }
a.qa-ref { text-decoration: none; font-weight: 600; color: #b7791f; cursor: pointer; }
a.qa-ref:hover { text-decoration: underline; }
.qa-refs { margin-top: .25rem; padding-top: .4rem; border-top: 1px solid var(--border-color-primary);
  font-size: .85rem; line-height: 1.45; }
.qa-refs-title { font-weight: 600; font-size: .75rem; text-transform: uppercase; letter-spacing: .05em;
  color: var(--body-text-color-subdued); }
.qa-refs ul { list-style: none; padding-left: 0 !important; margin: .2rem 0 0 0 !important; }
.qa-refs li { margin: .15rem 0 !important; }
.qa-unsupported { margin-top: .25rem; font-size: .85rem; color: var(--body-text-color-subdued); }
.qa-unverified { text-decoration: underline dotted #c05621; text-underline-offset: 3px; }
sup.qa-flag { margin-left: .2rem; padding: 0 .3rem; border-radius: 4px; font-size: .7rem; font-weight: 600;
  color: #8a4b00; background: #fff4e0; border: 1px solid #f0c36d; cursor: help; white-space: nowrap; }
.dark sup.qa-flag { color: #ffd89a; background: #3a2a0c; border-color: #8a6a20; }
.qa-unsupported ul { padding-left: 1.1rem !important; margin: .2rem 0 0 0 !important; }
.qa-ref-doc { color: var(--body-text-color-subdued); }
.qa-examples { gap: .4rem; flex-wrap: wrap; }
.qa-examples button { flex: 0 1 auto !important; min-width: 0 !important; font-size: .85rem; }
footer { display: none !important; }
.qa-chip { display: inline-block; font-size: .8rem; padding: .05rem .55rem; border-radius: 999px;
  border: 1px solid var(--border-color-primary); background: var(--block-background-fill);
  color: var(--body-text-color-subdued); }
.qa-status.qa-notice { font-size: .85rem; }
#qa-filter-row { align-items: center; gap: .4rem; }
#qa-upload-status:not(:has(.qa-status)) { display: none; }  /* no gap above the panel until there is news */
.qa-chip.qa-filter { color: #8a4b00; background: #fff4e0; border-color: #f0c36d; white-space: normal; }
.qa-notice a { color: inherit; text-decoration: underline; padding: 0 !important; margin: 0 !important; }
.qa-abstain { color: var(--body-text-color); }
.qa-abstain strong { display: block; }
.qa-related { margin-top: .4rem; font-size: .85rem; color: var(--body-text-color-subdued); }
.qa-related summary { cursor: pointer; }
.qa-related ul { padding-left: 1.1rem !important; margin: .2rem 0 0 0 !important; }
#qa-sidebar .qa-side-title { font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .05em;
  color: var(--body-text-color-subdued); margin: .6rem 0 .2rem; }
#qa-conversations .wrap { flex-direction: column; gap: .3rem; }
#qa-conversations label { width: 100%; margin: 0; font-size: .9rem; line-height: 1.3; }
#qa-conversations label input { display: none; }
#qa-chat button[aria-label="Clear"] { display: none !important; }
#qa-model { width: 100% !important; }
#qa-model input { padding-right: 1.6rem !important; text-overflow: ellipsis; }
a.qa-copy { float: right; margin-left: .5rem; font-size: .8rem; color: var(--body-text-color-subdued);
  text-decoration: none; border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 .4rem; }
a.qa-copy:hover { color: var(--body-text-color); }
.qa-refs-bare { border-top: none; overflow: hidden; }
"""

# Clicking a [n] marker scrolls the source panel to that sentence instead of following the link.
HEAD = """
<script>
document.addEventListener("click", function (event) {
  var copy = event.target && event.target.closest ? event.target.closest("a.qa-copy") : null;
  if (copy) {
    event.preventDefault();
    var bot = copy.closest('[data-testid="bot"]') || copy.parentElement.parentElement;
    var body = bot.cloneNode(true);
    body.querySelectorAll(".qa-refs, .qa-unsupported").forEach(function (e) { e.remove(); });
    body.querySelectorAll(".qa-flag").forEach(function (e) { e.textContent = " (not verified)"; });
    var refs = [];
    bot.querySelectorAll(".qa-refs li").forEach(function (li) {
      var doc = li.querySelector(".qa-ref-doc");
      li.querySelectorAll("a.qa-ref").forEach(function (a) {
        refs.push([parseInt(a.textContent.slice(1), 10), a.textContent + " " + (doc ? doc.textContent : "") +
                   ": \u201c" + (a.getAttribute("title") || "") + "\u201d"]);
      });
    });
    refs.sort(function (x, y) { return x[0] - y[0]; });
    var lines = refs.map(function (r) { return r[1]; });
    var text = body.textContent.trim() + (lines.length ? "\\n\\n" + lines.join("\\n") : "");
    function done() { copy.textContent = "Copied"; setTimeout(function () { copy.textContent = "Copy"; }, 1500); }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text; area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } finally { document.body.removeChild(area); }
    }
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, fallback); }
    else { fallback(); }
    return;
  }
  var link = event.target && event.target.closest ? event.target.closest("a.qa-ref") : null;
  if (!link) { return; }
  event.preventDefault();
  var id = (link.getAttribute("href") || "").slice(1);
  function go() {
    var el = document.getElementById(id);
    if (!el) { return; }
    el.scrollIntoView({behavior: "smooth", block: "center"});
    el.classList.remove("qa-flash"); void el.offsetWidth; el.classList.add("qa-flash");
  }
  go(); setTimeout(go, 400);
}, true);
// On a phone the conversation list would cover the chat: start it closed, and close it after a choice.
(function () {
  function narrow() { return window.matchMedia("(max-width: 768px)").matches; }
  function close() {
    var bar = document.getElementById("qa-sidebar");
    if (bar && bar.classList.contains("open")) { bar.querySelector(".toggle-button").click(); }
  }
  var tries = 0;
  var timer = setInterval(function () {
    tries += 1;
    if (document.getElementById("qa-sidebar") || tries > 100) {
      clearInterval(timer);
      if (narrow()) { close(); }
    }
  }, 100);
  document.addEventListener("click", function (event) {
    var t = event.target && event.target.closest ? event.target : null;
    if (t && narrow() && t.closest("#qa-conversations label, #qa-new-chat, #qa-conv-delete")) {
      setTimeout(close, 150);
    }
  }, true);
})();
</script>
"""


# After an answer, scroll the source panel (not the page) to the first cited sentence.
SCROLL_TO_FIRST_CITATION = """() => {
  const box = document.querySelector("#qa-sources .qa-sources");
  const mark = box && box.querySelector("mark.qa-cite");
  const head = mark && mark.closest(".qa-doc") && mark.closest(".qa-doc").querySelector(".qa-doc-title");
  const below = (head ? head.offsetHeight : 0) + 24;  // the document's sticky title must not cover it
  if (mark) { box.scrollTop = Math.max(0, mark.offsetTop - box.offsetTop - below); }
}"""
