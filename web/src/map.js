/*
 * map.js: the world map. d3-geo projects the world-atlas 110m countries
 * (topojson-client turns them into GeoJSON) into one SVG path per country,
 * shaded by the highest open alert level. Countries with an alert are
 * focusable (Tab), carry a text label (their alpha-2 code) and an
 * accessible name; Enter or a click selects.
 */
import { geoEqualEarth, geoPath, geoCentroid } from 'd3-geo';
import { feature } from 'topojson-client';
import world from 'world-atlas/countries-110m.json';
import { alpha2OfFeature, countryName } from './countries.js';

const SVGNS = 'http://www.w3.org/2000/svg';
const W = 960, H = 480;

export class WorldMap {
  constructor(el, onSelect) {
    this.el = el;
    this.onSelect = onSelect;
    this.paths = new Map(); /* alpha-2 -> [path elements] */
    this.centroid = new Map();
    this.small = new Set(); /* too small to see their fill: marked with a dot */
    this.labels = null;
    this.lastKey = '';
    this.build();
  }

  build() {
    const proj = geoEqualEarth().fitExtent([[4, 4], [W - 4, H - 4]], { type: 'Sphere' });
    const path = geoPath(proj);
    const svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'group');
    svg.setAttribute('aria-label', 'World map; countries with an open alert can be reached with Tab');
    const sphere = document.createElementNS(SVGNS, 'path');
    sphere.setAttribute('class', 'sphere');
    sphere.setAttribute('d', path({ type: 'Sphere' }));
    sphere.setAttribute('aria-hidden', 'true');
    svg.appendChild(sphere);
    const g = document.createElementNS(SVGNS, 'g');
    const fc = feature(world, world.objects.countries);
    for (const f of fc.features) {
      const a2 = alpha2OfFeature(f);
      const d = path(f);
      if (!d) continue;
      const p = document.createElementNS(SVGNS, 'path');
      p.setAttribute('d', d);
      p.setAttribute('class', 'country lv-none');
      if (a2) {
        p.dataset.country = a2;
        if (!this.paths.has(a2)) this.paths.set(a2, []);
        this.paths.get(a2).push(p);
        const c = proj(geoCentroid(f));
        if (c && !this.centroid.has(a2)) {
          this.centroid.set(a2, c);
          if (path.area(f) < 400) this.small.add(a2);
        }
      }
      const title = document.createElementNS(SVGNS, 'title');
      title.textContent = a2 ? countryName(a2) : (f.properties && f.properties.name) || '';
      p.appendChild(title);
      g.appendChild(p);
    }
    /* manual centroid fixes where the polygon centroid lands oddly */
    for (const [a2, lonlat] of [['US', [-98, 39]], ['FR', [2.5, 46.5]], ['NO', [9, 61]], ['RU', [95, 62]], ['CA', [-100, 57]]]) {
      if (this.centroid.has(a2)) this.centroid.set(a2, proj(lonlat));
    }
    svg.appendChild(g);
    this.labels = document.createElementNS(SVGNS, 'g');
    this.labels.setAttribute('aria-hidden', 'true');
    svg.appendChild(this.labels);
    g.addEventListener('click', (e) => {
      const a2 = e.target.dataset && e.target.dataset.country;
      if (a2) this.onSelect(a2);
    });
    g.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      const a2 = e.target.dataset && e.target.dataset.country;
      if (a2) { e.preventDefault(); this.onSelect(a2); }
    });
    this.el.appendChild(svg);
    this.el.dataset.ready = 'true';
  }

  /*
   * levels: Map alpha-2 -> {level, violations:[labels]} of countries with
   * an open alert that passes the filters; visible(a2): passes the country
   * and region filters; selected: alpha-2 or null.
   */
  render(levels, visible, selected) {
    for (const [a2, paths] of this.paths) {
      const info = levels.get(a2);
      const lv = info ? info.level : 'none';
      const dim = !visible(a2);
      for (const p of paths) {
        let cls = `country lv-${lv}`;
        if (dim) cls += ' dim';
        if (a2 === selected) cls += ' selected';
        if (p.getAttribute('class') !== cls) p.setAttribute('class', cls);
        p.dataset.level = lv;
        if (info) {
          p.setAttribute('tabindex', '0');
          p.setAttribute('role', 'button');
          p.setAttribute('aria-label', `${countryName(a2)}: ${lv}, ${info.violations.join(', ')}`);
        } else if (p.hasAttribute('tabindex')) {
          p.removeAttribute('tabindex');
          p.removeAttribute('role');
          p.removeAttribute('aria-label');
        }
      }
    }
    /* text labels for countries with an alert, so colour is never alone */
    const key = [...levels].map(([a2, i]) => `${a2}:${i.level}`).sort().join(',');
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.labels.replaceChildren();
      for (const [a2, info] of levels) {
        const c = this.centroid.get(a2);
        if (!c) continue;
        const small = this.small.has(a2);
        if (small) {
          const dot = document.createElementNS(SVGNS, 'circle');
          dot.setAttribute('cx', c[0].toFixed(1));
          dot.setAttribute('cy', c[1].toFixed(1));
          dot.setAttribute('r', '5');
          dot.setAttribute('class', `dot lv-${info.level}`);
          this.labels.appendChild(dot);
        }
        const t = document.createElementNS(SVGNS, 'text');
        t.setAttribute('x', (c[0] + (small ? 8 : 0)).toFixed(1));
        t.setAttribute('y', c[1].toFixed(1));
        t.setAttribute('text-anchor', small ? 'start' : 'middle');
        t.setAttribute('dominant-baseline', 'middle');
        t.setAttribute('class', 'label');
        t.textContent = a2;
        this.labels.appendChild(t);
      }
    }
  }
}
