// A sparkline on a small canvas: one line, gaps where nothing was seen,
// scaled 0..max, drawn in the page's accent colour (light or dark theme).

let colour = '';
let colourAt = 0;

function strokeColour() {
  // Read the theme's colour at most once a second, not once per row.
  const now = performance.now();
  if (!colour || now - colourAt > 1000) {
    colour = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#2f6fd0';
    colourAt = now;
  }
  return colour;
}

/** Draws `values` (oldest first, NaN = gap) across the canvas. */
export function drawSparkline(canvas, values, max) {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const w = canvas.width;
  const hgt = canvas.height;
  ctx.clearRect(0, 0, w, hgt);
  ctx.strokeStyle = strokeColour();
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  const n = values.length;
  let pen = false;
  for (let i = 0; i < n; i += 1) {
    const v = values[i];
    if (Number.isNaN(v)) {
      pen = false;
      continue;
    }
    const x = n > 1 ? (i * (w - 2)) / (n - 1) + 1 : w / 2;
    const y = hgt - 1 - (Math.max(0, Math.min(max, v)) / max) * (hgt - 2);
    if (pen) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    pen = true;
  }
  ctx.stroke();
}
