/**
 * A rough passphrase strength estimate for the setup form: score 0..4 and a hint.
 * Estimates guessing entropy from length and character classes, with penalties for
 * repeats, sequences and very common words. Advice only; the floor is MIN_SCORE.
 * @module passphrase
 */

export const MIN_LENGTH = 10;
export const MIN_SCORE = 2;
const COMMON = ['password', 'passphrase', 'qwerty', 'letmein', 'welcome', 'iloveyou', 'admin', 'secret', 'dragon', 'monkey', 'abc123', '123456', 'chat'];

export function strength(passphrase) {
  const text = passphrase.normalize('NFC');
  const chars = Array.from(text);
  if (chars.length === 0) return { score: 0, label: 'Empty', hint: `Use at least ${MIN_LENGTH} characters; several unrelated words work well.` };
  let pool = 0;
  if (/[a-z]/.test(text)) pool += 26;
  if (/[A-Z]/.test(text)) pool += 26;
  if (/[0-9]/.test(text)) pool += 10;
  if (/[^A-Za-z0-9]/.test(text)) pool += 33;
  const unique = new Set(chars.map((c) => c.toLowerCase())).size;
  let bits = chars.length * Math.log2(Math.max(pool, 2)) * Math.min(1, unique / Math.max(4, chars.length * 0.5));
  const lower = text.toLowerCase();
  for (const word of COMMON) if (lower.includes(word)) bits -= 12;
  if (/(.)\1{2,}/.test(text)) bits -= 8;
  if (/(0123|1234|2345|3456|4567|5678|6789|abcd|bcde|cdef|qwer|asdf)/i.test(text)) bits -= 10;
  const words = text.trim().split(/[\s\-_.]+/).filter((w) => w.length >= 3).length;
  if (words >= 4) bits += 10;
  let score = bits < 28 ? 0 : bits < 40 ? 1 : bits < 55 ? 2 : bits < 70 ? 3 : 4;
  if (chars.length < MIN_LENGTH) score = Math.min(score, 1);
  const labels = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
  const hints = [
    `Too easy to guess. Use at least ${MIN_LENGTH} characters; several unrelated words work well.`,
    'Still weak: make it longer or add unrelated words.',
    'Acceptable. A few more words make it much stronger.',
    'Good. Remember it: it cannot be recovered.',
    'Excellent. Remember it: it cannot be recovered.',
  ];
  return { score, label: labels[score], hint: hints[score] };
}
