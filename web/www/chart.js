// chart.js — a small line chart on a canvas, for the lesson's loss chart and the playground's
// charts. The canvas's pixel buffer is sized to its CSS box × devicePixelRatio and redrawn
// whenever that box changes (a resized window, a phone turned, a tab shown), so the lines
// stay sharp at any size. The canvas's size comes from CSS only.
//
//   const chart = new LineChart(canvas, { xLabel: 'steps', yLabel: 'loss', yMin: 0, yMax: 2.5 });
//   chart.update({ xMax: 2000, series: [...], marks: [...] });
//
// A series is one of:
//   { values: [...], x0: 1, color, width, alpha }  values[i] drawn at x = x0 + i
//   { points: [[x, y], ...], color, width, alpha, dots }
//   { band: [[x, low, high], ...], color, alpha }  a filled band between two lines
// null or NaN is a gap; values beyond the y range are drawn at its edge. A mark is a vertical
// line with a label: { x, color, label }. yMin/yMax left null: the range follows the data.

const FONT = '12px system-ui, sans-serif';
const GRID = '#e4e4e4';
const TEXT = '#555';

export class LineChart {
  constructor(canvas, { xLabel = '', yLabel = '', yMin = null, yMax = null, yFormat = null } = {}) {
    this.canvas = canvas;
    this.options = { xLabel, yLabel, yMin, yMax, yFormat };
    this.data = { xMax: 1, series: [], marks: [] };
    this.frame = 0;
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** New data: drawn at the next animation frame (many updates in one frame draw once). */
  update(data) {
    this.data = data;
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  draw() {
    const { canvas, options, data } = this;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return; // hidden: drawn when shown (the observer fires then)
    const dpr = window.devicePixelRatio || 1;
    const bufferWidth = Math.round(width * dpr);
    const bufferHeight = Math.round(height * dpr);
    if (canvas.width !== bufferWidth) canvas.width = bufferWidth;
    if (canvas.height !== bufferHeight) canvas.height = bufferHeight;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;

    const series = data.series || [];
    const area = { left: 50, right: width - 12, top: 22, bottom: height - 34 };
    const plotWidth = Math.max(1, area.right - area.left);
    const plotHeight = Math.max(1, area.bottom - area.top);

    // Axes: x from xMin to xMax; y fixed or following the data, on round ticks.
    const xMin = data.xMin ?? 0;
    const xMax = Math.max(xMin + 1, data.xMax ?? 1);
    const [yLow, yHigh, yStep] = yRange(options, series);
    const X = (x) => area.left + ((x - xMin) / (xMax - xMin)) * plotWidth;
    const Y = (y) => {
      const clamped = Math.min(yHigh, Math.max(yLow, y)); // off-scale values sit on the edge
      return area.bottom - ((clamped - yLow) / (yHigh - yLow)) * plotHeight;
    };

    ctx.lineWidth = 1;
    ctx.strokeStyle = GRID;
    ctx.fillStyle = TEXT;
    ctx.textAlign = 'right';
    const yFormat = options.yFormat || ((v) => formatTick(v, yStep));
    for (let i = 0, y = yLow; y <= yHigh + yStep * 1e-9; i++, y = yLow + i * yStep) {
      const py = Math.round(Y(y)) + 0.5;
      line(ctx, area.left, py, area.right, py);
      ctx.fillText(yFormat(y), area.left - 6, py + 4);
    }
    const xStep = Math.max(1, niceStep(xMax - xMin, width < 420 ? 3 : 6)); // whole steps
    ctx.textAlign = 'center';
    for (let x = Math.ceil(xMin / xStep) * xStep; x <= xMax + xStep * 1e-9; x += xStep) {
      const px = Math.round(X(x)) + 0.5;
      line(ctx, px, area.bottom, px, area.bottom + 4);
      ctx.fillText(formatTick(x, xStep), px, area.bottom + 16);
    }
    ctx.strokeStyle = '#999';
    line(ctx, area.left, area.bottom + 0.5, area.right, area.bottom + 0.5);
    ctx.textAlign = 'left';
    ctx.fillText(options.yLabel, 4, 13);
    ctx.textAlign = 'right';
    ctx.fillText(options.xLabel, area.right, height - 3);

    // The data, clipped to the plot area.
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top - 2, plotWidth, plotHeight + 4);
    ctx.clip();
    for (const s of series) {
      ctx.globalAlpha = s.alpha ?? 1;
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = s.width ?? 1.5;
      ctx.lineJoin = 'round';
      if (s.band) drawBand(ctx, s.band, X, Y);
      else if (s.points) drawPoints(ctx, s.points, X, Y, s.dots);
      else if (s.values) drawValues(ctx, s.values, s.x0 ?? 0, X, Y, plotWidth);
    }
    ctx.restore();
    ctx.globalAlpha = 1;

    // Marks: a dashed vertical line and its label, below the ones before it.
    (data.marks || []).forEach((mark, i) => {
      const px = Math.round(X(mark.x)) + 0.5;
      ctx.strokeStyle = mark.color;
      ctx.fillStyle = mark.color;
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1.5;
      line(ctx, px, area.top, px, area.bottom);
      ctx.setLineDash([]);
      const onRight = px < area.left + plotWidth / 2;
      ctx.textAlign = onRight ? 'left' : 'right';
      ctx.fillText(mark.label, px + (onRight ? 4 : -4), area.top + 12 + 15 * i);
    });
  }
}

/** The mean of the last `n` values at each index (null where the value is null). */
export function runningMean(values, n) {
  const out = new Array(values.length);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] === null) {
      out[i] = null;
      continue;
    }
    sum += values[i];
    if (i >= n && values[i - n] !== null) sum -= values[i - n];
    out[i] = sum / Math.min(i + 1, n);
  }
  return out;
}

const line = (ctx, x0, y0, x1, y1) => {
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
};

const finite = (v) => typeof v === 'number' && !Number.isNaN(v);

// One value per x. With more values than pixels, each pixel column draws its first, lowest,
// highest and last value: the same picture as every value, at a fraction of the cost.
function drawValues(ctx, values, x0, X, Y, plotWidth) {
  const dense = values.length > 2 * plotWidth;
  ctx.beginPath();
  let penDown = false;
  let bucket = null; // { key, px, first, low, high, last }
  const flush = () => {
    if (!bucket) return;
    const { px } = bucket;
    if (penDown) ctx.lineTo(px, Y(bucket.first));
    else ctx.moveTo(px, Y(bucket.first));
    penDown = true;
    if (dense) {
      ctx.lineTo(px, Y(bucket.low));
      ctx.lineTo(px, Y(bucket.high));
      ctx.lineTo(px, Y(bucket.last));
    }
    bucket = null;
  };
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!finite(v)) {
      flush();
      penDown = false;
      continue;
    }
    const px = X(x0 + i);
    const key = dense ? Math.round(px) : i;
    if (bucket && bucket.key === key) {
      bucket.low = Math.min(bucket.low, v);
      bucket.high = Math.max(bucket.high, v);
      bucket.last = v;
    } else {
      flush();
      bucket = { key, px: dense ? key : px, first: v, low: v, high: v, last: v };
    }
  }
  flush();
  ctx.stroke();
}

function drawPoints(ctx, points, X, Y, dots) {
  ctx.beginPath();
  let penDown = false;
  for (const [x, y] of points) {
    if (!finite(y)) {
      penDown = false;
      continue;
    }
    if (penDown) ctx.lineTo(X(x), Y(y));
    else ctx.moveTo(X(x), Y(y));
    penDown = true;
  }
  ctx.stroke();
  if (dots) {
    for (const [x, y] of points) {
      if (!finite(y)) continue;
      ctx.beginPath();
      ctx.arc(X(x), Y(y), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

function drawBand(ctx, band, X, Y) {
  const rows = band.filter(([, low, high]) => finite(low) && finite(high));
  if (rows.length === 0) return;
  ctx.beginPath();
  rows.forEach(([x, , high], i) => (i === 0 ? ctx.moveTo(X(x), Y(high)) : ctx.lineTo(X(x), Y(high))));
  for (let i = rows.length - 1; i >= 0; i--) ctx.lineTo(X(rows[i][0]), Y(rows[i][1]));
  ctx.closePath();
  ctx.fill();
  if (rows.length === 1) { // a single measurement: a short vertical bar
    const [x, low, high] = rows[0];
    ctx.fillRect(X(x) - 2, Y(high), 4, Math.max(1, Y(low) - Y(high)));
  }
}

// The y axis: [low, high, tick step]. A fixed end stays; an open one follows the data, padded
// and rounded out to a tick.
function yRange({ yMin, yMax }, series) {
  let low = Infinity;
  let high = -Infinity;
  const see = (v) => {
    if (Number.isFinite(v)) {
      low = Math.min(low, v);
      high = Math.max(high, v);
    }
  };
  if (yMin === null || yMax === null) {
    for (const s of series) {
      if (s.values) s.values.forEach(see);
      if (s.points) s.points.forEach(([, y]) => see(y));
      if (s.band) s.band.forEach(([, a, b]) => { see(a); see(b); });
    }
  }
  if (yMin !== null) low = yMin;
  if (yMax !== null) high = yMax;
  if (!Number.isFinite(low) || !Number.isFinite(high)) [low, high] = [0, 1];
  if (low === high) [low, high] = [low - (Math.abs(low) || 1) * 0.5, high + (Math.abs(high) || 1) * 0.5];
  if (low > high) [low, high] = [high, low];
  const step = niceStep(high - low, 5);
  if (yMin === null) low = Math.floor((low - (high - low) * 0.04) / step) * step;
  if (yMax === null) high = Math.ceil((high + (high - low) * 0.04) / step) * step;
  return [low, high, step];
}

// A round step (1, 2 or 5 times a power of ten) that cuts `range` into about `count` parts.
function niceStep(range, count) {
  const raw = range / count;
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
}

// A tick's label: as many decimals as the step needs; thousands with separators.
function formatTick(v, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  if (Math.abs(v) < step * 1e-6) v = 0;
  if (decimals === 0) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(Math.min(decimals, 10));
}
