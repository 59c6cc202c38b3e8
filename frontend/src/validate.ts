// Client-side shape checks, mirroring keychain.Provider.Validate on the Go
// side (same order, same limits, same wording without the secret's first
// characters). Like App.Login, the caller trims surrounding whitespace first.
// The Go side checks again; its error is shown as worded.
// ProviderView carries no shape, so the table is mirrored here by provider id.

interface Shape {
  prefixes: string[];
  minLen: number;
  maxLen: number;
}

export const SHAPES: Record<string, Shape> = {
  anthropic: { prefixes: ["sk-ant-"], minLen: 40, maxLen: 512 },
  "claude-oauth": { prefixes: ["sk-ant-oat"], minLen: 40, maxLen: 1024 },
  openai: { prefixes: ["sk-"], minLen: 20, maxLen: 512 },
  github: { prefixes: ["ghp_", "github_pat_", "gho_", "ghu_", "ghs_"], minLen: 20, maxLen: 512 },
  gemini: { prefixes: [], minLen: 20, maxLen: 512 },
};

/** Returns null when the secret looks right, else a message that never contains it. */
export function validateSecret(providerId: string, providerName: string, secret: string, hint = ""): string | null {
  const what = `The ${providerName || providerId || "secret"}`;
  if (secret === "") return `${what} is empty.`;
  for (let i = 0; i < secret.length; i++) {
    const c = secret.charCodeAt(i);
    const ch = secret[i];
    if (ch === "\n" || ch === "\r") return `${what} contains a line break at position ${i + 1}; paste it on one line.`;
    if (/\s/.test(ch)) return `${what} contains whitespace at position ${i + 1}; copy it again without spaces.`;
    if (c < 0x21 || c > 0x7e) return `${what} contains a character that is not printable ASCII at position ${i + 1}.`;
  }
  const shape = SHAPES[providerId];
  if (!shape) return null;
  if (shape.prefixes.length > 0 && !shape.prefixes.some((p) => secret.startsWith(p))) {
    const want = shape.prefixes.map((p) => `"${p}"`).join(" or ");
    return `${what} should start with ${want}; this one does not${hint ? ` (${hint})` : ""}.`;
  }
  if (secret.length < shape.minLen) {
    return `${what} is too short (${secret.length} characters, expected at least ${shape.minLen}); was it cut off?`;
  }
  if (secret.length > shape.maxLen) {
    return `${what} is too long (${secret.length} characters, at most ${shape.maxLen}).`;
  }
  return null;
}
