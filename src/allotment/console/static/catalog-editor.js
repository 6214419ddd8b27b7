// The catalog editor's error links (CON-53): "Line N" puts the cursor on line N of the
// document and scrolls it into view. Without JavaScript the link still focuses the editor and
// the error shows the line's text; nothing here is needed to save.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-line]");
  const editor = document.getElementById("catalog");
  if (!link || !editor) return;
  event.preventDefault();
  const line = Number(link.dataset.line);
  const lines = editor.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
  const end = start + (lines[line - 1] || "").length;
  editor.focus();
  editor.setSelectionRange(start, end);
  const lineHeight = editor.scrollHeight / Math.max(lines.length, 1);
  editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
});
