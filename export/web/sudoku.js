// sudoku.js: what the demo page knows of Sudoku (the runtime, trm.js, knows no task): generating a
// puzzle with one solution, the givens' contradictions, and whether an answer keeps the rules.
// Grids are arrays of N*N digits 1..N with 0 for blanks (a bundle's tokens are digit + 1, blank 1).

export const BOXES = { 4: [2, 2], 6: [2, 3], 9: [3, 3] };

/** A seeded generator (mulberry32): the same seed gives the same puzzle. @param {number} seed */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(a, rand) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function units(n) {
  const [br, bc] = BOXES[n];
  const rowOf = (i) => Math.floor(i / n), colOf = (i) => i % n;
  const boxOf = (i) => Math.floor(rowOf(i) / br) * (n / bc) + Math.floor(colOf(i) / bc);
  return { rowOf, colOf, boxOf, br, bc };
}

/**
 * Count the solutions of a grid, up to `limit` (backtracking on the cell with fewest candidates).
 * With `fill` and a random source, the first solution is written into the grid in a random digit order.
 */
export function countSolutions(grid, n = 9, limit = 2, rand = null) {
  const { rowOf, colOf, boxOf } = units(n);
  const full = (1 << (n + 1)) - 2;
  const rows = new Array(n).fill(0), cols = new Array(n).fill(0), boxes = new Array(n).fill(0);
  for (let i = 0; i < n * n; i++) {
    const d = grid[i];
    if (!d) continue;
    const bit = 1 << d;
    if ((rows[rowOf(i)] | cols[colOf(i)] | boxes[boxOf(i)]) & bit) return 0;
    rows[rowOf(i)] |= bit; cols[colOf(i)] |= bit; boxes[boxOf(i)] |= bit;
  }
  const g = grid.slice();
  let found = 0;
  let first = null;
  const go = () => {
    let best = -1, bestMask = 0, bestCount = 99;
    for (let i = 0; i < n * n; i++) {
      if (g[i]) continue;
      const mask = full & ~(rows[rowOf(i)] | cols[colOf(i)] | boxes[boxOf(i)]);
      let c = 0;
      for (let m = mask; m; m &= m - 1) c++;
      if (c < bestCount) { best = i; bestMask = mask; bestCount = c; if (c <= 1) break; }
    }
    if (best < 0) {
      found += 1;
      if (!first) first = g.slice();
      return found >= limit;
    }
    const digits = [];
    for (let d = 1; d <= n; d++) if (bestMask & (1 << d)) digits.push(d);
    if (rand) shuffle(digits, rand);
    const r = rowOf(best), c = colOf(best), b = boxOf(best);
    for (const d of digits) {
      const bit = 1 << d;
      g[best] = d; rows[r] |= bit; cols[c] |= bit; boxes[b] |= bit;
      const stop = go();
      g[best] = 0; rows[r] &= ~bit; cols[c] &= ~bit; boxes[b] &= ~bit;
      if (stop) return true;
    }
    return false;
  };
  go();
  countSolutions.first = first;
  return found;
}

/**
 * A puzzle with exactly one solution: a random full grid, then givens taken away in random order while
 * the solution stays unique, down to `givens` (or fewer cannot be taken away).
 * @returns {{puzzle: number[], solution: number[]}}
 */
export function generate(n = 9, seed = Date.now(), givens = n === 9 ? 30 : Math.ceil(n * n / 2)) {
  if (!BOXES[n]) throw new Error(`Sudoku size ${n} is not supported; sizes are 4, 6, 9`);
  const rand = rng(seed);
  countSolutions(new Array(n * n).fill(0), n, 1, rand);
  const solution = countSolutions.first;
  const puzzle = solution.slice();
  let left = n * n;
  for (const i of shuffle([...Array(n * n).keys()], rand)) {
    if (left <= givens) break;
    const d = puzzle[i];
    puzzle[i] = 0;
    if (countSolutions(puzzle, n, 2) !== 1) puzzle[i] = d;
    else left -= 1;
  }
  return { puzzle, solution };
}

/** Why the givens break Sudoku's rules (a digit twice in a row, column or box), or null. */
export function contradiction(grid, n = 9) {
  const { rowOf, colOf, boxOf } = units(n);
  if (!grid.some((d) => d > 0)) return "the puzzle has no givens: give the puzzle's digits";
  const seen = new Map();
  for (let i = 0; i < n * n; i++) {
    const d = grid[i];
    if (!d) continue;
    for (const [kind, u] of [["row", rowOf(i)], ["column", colOf(i)], ["box", boxOf(i)]]) {
      const key = `${kind}${u}:${d}`;
      if (seen.has(key)) {
        const j = seen.get(key);
        return `the digit ${d} is given twice in ${kind} ${u + 1}, at (row ${rowOf(j) + 1}, column ${colOf(j) + 1}) and ` +
          `(row ${rowOf(i) + 1}, column ${colOf(i) + 1}): a Sudoku holds each digit once per row, column and box`;
      }
      seen.set(key, i);
    }
  }
  return null;
}

/** Whether an answer is a complete grid keeping every rule and every given of the puzzle (no label needed). */
export function keepsRules(puzzle, answer, n = 9) {
  if (answer.length !== n * n || answer.some((d) => !(d >= 1 && d <= n))) return false;
  if (puzzle.some((d, i) => d && d !== answer[i])) return false;
  return contradiction(answer, n) === null;
}
