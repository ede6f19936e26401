/*
 * taxonomy.js: the 14 violation codes (DESIGN.md "Taxonomy"), in the
 * server's stable order, with the labels the page shows, and the alert
 * levels with their colour-blind-safe colours (ColorBrewer YlOrBr: one hue
 * getting darker, so the order reads without colour vision too; every
 * colour is always paired with a text label).
 */
export const VIOLATIONS = [
  ['internet_shutdown', 'Internet shutdown', 'Shutdown'],
  ['censorship', 'Censorship', 'Censor'],
  ['surveillance', 'Surveillance', 'Surveil'],
  ['online_harassment', 'Online harassment', 'Harass'],
  ['expression_restriction', 'Expression restriction', 'Express'],
  ['assembly_repression', 'Assembly repression', 'Assembly'],
  ['arbitrary_detention', 'Arbitrary detention', 'Detain'],
  ['enforced_disappearance', 'Enforced disappearance', 'Disapp'],
  ['torture', 'Torture', 'Torture'],
  ['killing', 'Killing', 'Killing'],
  ['sexual_violence', 'Sexual violence', 'Sexual'],
  ['attack_on_defenders', 'Attack on defenders', 'Defend'],
  ['attack_on_civilians', 'Attack on civilians', 'Civil'],
  ['displacement', 'Displacement', 'Displace'],
];

const LABEL = new Map(VIOLATIONS.map(([c, l]) => [c, l]));

export function violationLabel(code) {
  return LABEL.get(code) || code;
}

export const LEVELS = ['none', 'watch', 'warning', 'critical'];

/* fill, text colour on that fill */
export const LEVEL_COLOURS = {
  none: ['#e3e6ea', '#1b1f24'],
  watch: ['#fec44f', '#1b1f24'],
  warning: ['#ec7014', '#1b1f24'],
  critical: ['#8c2d04', '#ffffff'],
};

export function levelRank(level) {
  const i = LEVELS.indexOf(level);
  return i < 0 ? 0 : i;
}
