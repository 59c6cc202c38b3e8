/** Uptime from an RFC 3339 start time: "42s", "3m 05s", "2h 07m", "3d 4h". "" if unknown. */
export function uptime(startedAt: string | undefined, nowMs: number): string {
  if (!startedAt) return "";
  const t = Date.parse(startedAt);
  if (Number.isNaN(t)) return "";
  let s = Math.max(0, Math.floor((nowMs - t) / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const two = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${two(m)}m`;
  if (m > 0) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

export function memory(mib: number | undefined): string {
  if (!mib) return "";
  return mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}
