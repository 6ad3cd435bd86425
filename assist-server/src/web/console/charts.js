// Small inline-SVG charts: horizontal bars (one or more series), a histogram and a line chart
// for the emotion timeline. No library: each function returns an <svg> element.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  if (text !== undefined) el.textContent = text;
  return el;
}

const PALETTE = ['#2f6fdf', '#e0823d', '#3a9d5d', '#b84fb0', '#d04545', '#7a7a7a'];

function emptyChart(testid) {
  const svg = svgEl('svg', { class: 'chart empty', width: 240, height: 30, 'data-testid': testid });
  svg.appendChild(svgEl('text', { x: 4, y: 20, class: 'muted' }, t('chart.empty')));
  return svg;
}

/**
 * Horizontal bars. `items`: [{label, values: [n, ...]}] (one value per series) or
 * [{label, value}]; `series`: [{name, color}] for a legend; `format(v)` renders values;
 * `max` fixes the scale (e.g. 100 for scores, 1 for rates).
 */
function barChart({ items, series, format, max, testid, width }) {
  const rows = (items || []).map((it) => ({
    full: String(it.label),
    label: shorten(String(it.label), 30),
    values: it.values || [it.value],
  }));
  if (!rows.length) return emptyChart(testid);
  const fmt = format || ((v) => (v === null || v === undefined ? '–' : String(v)));
  const nSeries = rows[0].values.length;
  const barH = 14;
  const gap = 8;
  const labelW = Math.min(230, 12 + 7 * Math.max(...rows.map((r) => textWidth(r.label))));
  const W = width || 560;
  const valueW = 70;
  const plotW = Math.max(80, W - labelW - valueW);
  const legendH = series && series.length > 1 ? 22 : 0;
  const rowH = nSeries * barH + gap;
  const H = legendH + rows.length * rowH + 4;
  const top = Math.max(
    max || 0,
    ...rows.flatMap((r) => r.values.map((v) => (typeof v === 'number' && isFinite(v) ? v : 0))),
  ) || 1;
  const svg = svgEl('svg', {
    class: 'chart bars', width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'data-testid': testid,
    role: 'img',
  });
  if (legendH) {
    series.forEach((s, i) => {
      svg.appendChild(svgEl('rect', { x: labelW + i * 120, y: 4, width: 12, height: 12, fill: s.color || PALETTE[i] }));
      svg.appendChild(svgEl('text', { x: labelW + i * 120 + 16, y: 14, class: 'legend' }, s.name));
    });
  }
  rows.forEach((r, i) => {
    const y0 = legendH + i * rowH;
    const label = svgEl('text', { x: labelW - 6, y: y0 + (nSeries * barH) / 2 + 4, 'text-anchor': 'end', class: 'label' }, r.label);
    label.appendChild(svgEl('title', {}, r.full));
    svg.appendChild(label);
    r.values.forEach((v, j) => {
      const num = typeof v === 'number' && isFinite(v) ? v : 0;
      const w = Math.max(num > 0 ? 1 : 0, (num / top) * plotW);
      const y = y0 + j * barH;
      const color = (series && series[j] && series[j].color) || PALETTE[j % PALETTE.length];
      const rect = svgEl('rect', { x: labelW, y, width: w, height: barH - 2, fill: color, rx: 2 });
      rect.appendChild(svgEl('title', {}, `${r.full}: ${fmt(v)}`));
      svg.appendChild(rect);
      svg.appendChild(svgEl('text', { x: labelW + w + 4, y: y + barH - 4, class: 'value' }, fmt(v)));
    });
  });
  return svg;
}

/** Vertical bars over fixed buckets (the 10-point score distribution). */
function histogram({ buckets, labels, testid, width, height }) {
  const counts = buckets || [];
  if (!counts.some((c) => c > 0)) return emptyChart(testid);
  const W = width || 420;
  const H = height || 180;
  const padL = 30;
  const padB = 22;
  const padT = 14;
  const plotW = W - padL - 6;
  const plotH = H - padB - padT;
  const top = Math.max(...counts, 1);
  const bw = plotW / counts.length;
  const svg = svgEl('svg', { class: 'chart histogram', width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'data-testid': testid, role: 'img' });
  svg.appendChild(svgEl('line', { x1: padL, y1: padT + plotH, x2: W - 6, y2: padT + plotH, class: 'axis' }));
  svg.appendChild(svgEl('text', { x: padL - 4, y: padT + 4, 'text-anchor': 'end', class: 'tick' }, String(top)));
  counts.forEach((c, i) => {
    const h = (c / top) * plotH;
    const x = padL + i * bw + 2;
    const rect = svgEl('rect', { x, y: padT + plotH - h, width: bw - 4, height: h, fill: i < 6 ? '#d97a4a' : '#2f6fdf', rx: 2 });
    rect.appendChild(svgEl('title', {}, `${labels[i]}: ${c}`));
    svg.appendChild(rect);
    if (c > 0) svg.appendChild(svgEl('text', { x: x + (bw - 4) / 2, y: padT + plotH - h - 3, 'text-anchor': 'middle', class: 'value' }, String(c)));
    svg.appendChild(svgEl('text', { x: x + (bw - 4) / 2, y: H - 6, 'text-anchor': 'middle', class: 'tick' }, labels[i]));
  });
  return svg;
}

/**
 * The customer's emotion over the call: x = seconds, y = -1..1. `points`: [{t, score, label,
 * escalating}]; `marks`: [{t, severity}] drawn as ticks on the time axis (hits).
 */
function emotionChart({ points, marks, duration, testid, width, height }) {
  if (!points || !points.length) return emptyChart(testid);
  const W = width || 900;
  const H = height || 200;
  const padL = 34;
  const padR = 10;
  const padT = 10;
  const padB = 30;
  const plotW = W - padL - padR;
  const plotH = H - padT - padB;
  const tMax = Math.max(duration || 0, ...points.map((p) => p.t), ...(marks || []).map((m) => m.t), 1);
  const x = (tt) => padL + (tt / tMax) * plotW;
  const y = (s) => padT + ((1 - s) / 2) * plotH;
  const svg = svgEl('svg', { class: 'chart line', width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'data-testid': testid, role: 'img' });
  // Bands: negative below zero, positive above.
  svg.appendChild(svgEl('rect', { x: padL, y: y(1), width: plotW, height: plotH / 2, class: 'band-pos' }));
  svg.appendChild(svgEl('rect', { x: padL, y: y(0), width: plotW, height: plotH / 2, class: 'band-neg' }));
  for (const s of [1, 0, -1]) {
    svg.appendChild(svgEl('line', { x1: padL, y1: y(s), x2: W - padR, y2: y(s), class: s === 0 ? 'axis' : 'grid' }));
    svg.appendChild(svgEl('text', { x: padL - 4, y: y(s) + 4, 'text-anchor': 'end', class: 'tick' }, String(s)));
  }
  const steps = 5;
  for (let i = 0; i <= steps; i++) {
    const tt = (tMax * i) / steps;
    svg.appendChild(svgEl('text', { x: x(tt), y: H - padB + 14, 'text-anchor': 'middle', class: 'tick' }, fmtClock(tt)));
  }
  svg.appendChild(svgEl('text', { x: W - padR, y: H - 3, 'text-anchor': 'end', class: 'tick' }, t('chart.time')));
  for (const m of marks || []) {
    const tick = svgEl('line', { x1: x(m.t), y1: padT + plotH, x2: x(m.t), y2: padT + plotH + 6, class: 'mark sev-' + m.severity });
    tick.appendChild(svgEl('title', {}, `${t('chart.hit')} ${fmtClock(m.t)} ${m.label || ''}`));
    svg.appendChild(tick);
  }
  const sorted = points.slice().sort((a, b) => a.t - b.t);
  const d = sorted.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.score).toFixed(1)}`).join(' ');
  svg.appendChild(svgEl('path', { d, class: 'trend' }));
  for (const p of sorted) {
    const dot = svgEl('circle', {
      cx: x(p.t), cy: y(p.score), r: p.escalating ? 5 : 3.5,
      class: 'dot emo-' + p.label + (p.escalating ? ' escalating' : ''),
    });
    dot.appendChild(svgEl('title', {}, `${fmtClock(p.t)} ${tv('emotion', p.label)} ${Number(p.score).toFixed(2)}${p.escalating ? ' · ' + t('chart.escalating') : ''}`));
    svg.appendChild(dot);
  }
  return svg;
}

/** Seconds as m:ss. */
function fmtClock(secs) {
  const s = Math.max(0, Math.round(Number(secs) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Long labels keep their end (rule ids differ at the end), with an ellipsis in front. */
function shorten(text, max) {
  return text.length > max ? '…' + text.slice(text.length - max + 1) : text;
}

/** Rough width in 7-px units: CJK characters count double. */
function textWidth(text) {
  let n = 0;
  for (const ch of text) n += ch.charCodeAt(0) > 0x2e80 ? 2 : 1;
  return n;
}
