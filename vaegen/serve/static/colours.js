// vaegen serve: the colours of the map's points by a property the user picks (the sentence's length, its tune, or
// whether it contains a word), and the legend that says what they mean. Pure: points in, colours out.

const RAMP = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725']; // viridis, short to long
const CATEGORIES = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
const OTHER = '#c4c9d0'; // tunes past the most common, and sentences without the word
const MATCH = '#d9480f';

const length = (text) => Array.from(text).length; // characters, not UTF-16 units

// A colour between the ramp's stops, for t in [0, 1]
function ramp(t) {
  const at = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(at), RAMP.length - 2);
  const [a, b] = [RAMP[i], RAMP[i + 1]].map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * (at - i))).join(',')})`;
}

// By length: the ramp from the 5th to the 95th percentile of the lengths, so that a few long ones do not wash it out
function byLength(points) {
  const lengths = points.map((p) => length(p.text));
  const sorted = [...lengths].sort((a, b) => a - b);
  const [lo, hi] = [sorted[Math.floor(0.05 * (sorted.length - 1))], sorted[Math.ceil(0.95 * (sorted.length - 1))]];
  const fills = lengths.map((n) => ramp(hi > lo ? (n - lo) / (hi - lo) : 0.5));
  const legend = [{ label: `up to ${lo} characters`, colour: ramp(0) }, { label: `${hi} or more`, colour: ramp(1) }];
  return { fills, legend };
}

// By tune: the most common tunes on the map get a colour each, the others one grey
function byTune(points) {
  const counts = new Map();
  for (const p of points) if (p.tune) counts.set(p.tune, (counts.get(p.tune) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, CATEGORIES.length).map(([tune]) => tune);
  const colour = new Map(top.map((tune, i) => [tune, CATEGORIES[i]]));
  const fills = points.map((p) => colour.get(p.tune) ?? OTHER);
  const legend = top.map((tune) => ({ label: `${tune} (${counts.get(tune)})`, colour: colour.get(tune) }));
  if (fills.includes(OTHER)) legend.push({ label: 'other tunes', colour: OTHER });
  return { fills, legend };
}

// By a word: the sentences that contain it stand out
function byWord(points, word) {
  if (!word) return { fills: points.map(() => null), legend: [{ label: 'type a word to find', colour: OTHER }] };
  const found = points.map((p) => p.text.toLowerCase().includes(word.toLowerCase()));
  const count = found.filter(Boolean).length;
  return {
    fills: found.map((hit) => (hit ? MATCH : OTHER)),
    legend: [{ label: `${count} of ${points.length} contain “${word}”`, colour: MATCH }],
  };
}

// Each point's fill (null: the page's default) and the legend, for a property: 'length', 'tune', 'word' or 'none'
export function colouring(points, by, word = '') {
  if (points.length === 0) return { fills: [], legend: [] };
  if (by === 'length') return byLength(points);
  if (by === 'tune') return byTune(points);
  if (by === 'word') return byWord(points, word.trim());
  return { fills: points.map(() => null), legend: [] };
}
