/*
 * chart.js: time series of one country x violation with uPlot: the
 * baseline (dashed step area drawn first, so it sits behind), the event
 * counts per bin (bars), and alert spans as shaded bands behind everything,
 * labelled by level in the legend text below the chart.
 */
import uPlot from 'uplot';
import { LEVEL_COLOURS } from './taxonomy.js';

const SPAN_FILL = {
  watch: 'rgba(254,196,79,0.28)',
  warning: 'rgba(236,112,20,0.22)',
  critical: 'rgba(140,45,4,0.20)',
};

export class SeriesChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.spans = []; /* [{from, to, level}] in seconds */
    this.data = [[], [], []];
    this.ro = null;
    this.step = 3600;
  }

  width() {
    return Math.max(260, Math.floor(this.el.clientWidth || 600));
  }

  ensure(label) {
    if (this.plot && this.label === label) return;
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
      if (this.ro) this.ro.disconnect();
    }
    this.label = label;
    const self = this;
    const opts = {
      width: this.width(),
      height: 240,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{ stroke: '#1b1f24' }, { stroke: '#1b1f24', size: 44 }],
      legend: { live: true },
      series: [
        {},
        { label: 'Baseline', stroke: '#4a5360', width: 1.5, dash: [6, 4], fill: 'rgba(74,83,96,0.16)', paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
        label === 'Events'
          ? { label, stroke: '#0b57d0', width: 1, fill: 'rgba(11,87,208,0.55)', paths: uPlot.paths.bars({ size: [0.9, Infinity], align: 1 }), points: { show: false } }
          : { label, stroke: '#0b57d0', width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
      ],
      hooks: {
        drawClear: [(u) => {
          const ctx = u.ctx;
          ctx.save();
          for (const s of self.spans) {
            const x0 = Math.max(u.bbox.left, u.valToPos(s.from, 'x', true));
            const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(s.to, 'x', true));
            if (x1 <= x0) continue;
            ctx.fillStyle = SPAN_FILL[s.level] || SPAN_FILL.watch;
            ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
            ctx.fillStyle = LEVEL_COLOURS[s.level] ? LEVEL_COLOURS[s.level][0] : '#fec44f';
            ctx.fillRect(x0, u.bbox.top, x1 - x0, 4 * devicePixelRatio);
          }
          ctx.restore();
        }],
      },
    };
    this.plot = new uPlot(opts, this.data, this.el);
    this.ro = new ResizeObserver(() => {
      const w = this.width();
      if (this.plot && Math.abs(this.plot.width - w) > 2) this.plot.setSize({ width: w, height: 240 });
    });
    this.ro.observe(this.el);
  }

  /* points: [{t (s), count, baseline}] sorted by t; spans in seconds */
  /* LABEL: what the bars are ("Events", "Signal (probe mean)") */
  set(points, spans, step, label = 'Events') {
    this.step = step || 3600;
    this.ensure(label);
    this.spans = spans;
    this.data = [points.map((p) => p.t), points.map((p) => p.baseline), points.map((p) => p.count)];
    this.redraw();
  }

  /* x spans whole bins (the last bar included), also for a single bin */
  redraw() {
    const ts = this.data[0];
    this.plot.setData(this.data, true);
    if (ts.length) this.plot.setScale('x', { min: ts[0], max: ts[ts.length - 1] + this.step });
  }

  /* a live cell update: replace the last bin or append a new one */
  upsert(p) {
    if (!this.plot || this.label !== 'Events') return; /* cells count events */
    const [ts, bs, cs] = this.data;
    const n = ts.length;
    if (n && ts[n - 1] === p.t) {
      bs[n - 1] = p.baseline; cs[n - 1] = p.count;
    } else if (!n || p.t > ts[n - 1]) {
      /* bins without events between the last one and this */
      for (let t = n ? ts[n - 1] + this.step : p.t; n && t < p.t && ts.length < 5000; t += this.step) {
        ts.push(t); bs.push(p.baseline); cs.push(0);
      }
      ts.push(p.t); bs.push(p.baseline); cs.push(p.count);
    } else {
      const i = ts.indexOf(p.t);
      if (i < 0) return;
      bs[i] = p.baseline; cs[i] = p.count;
    }
    this.redraw();
  }

  clear() {
    this.spans = [];
    if (this.plot) {
      this.data = [[], [], []];
      this.plot.setData(this.data, true);
    }
  }
}
