// How numbers of a flow read in the list and the detail: sizes, durations, clock times.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 -> "1.5 KiB"; null -> "". */
export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** Seconds -> "12 ms", "1.25 s", "2 min 5 s"; null -> "". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** Seconds since the epoch -> "14:03:22.125" in local time. */
export function formatClock(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined) return "";
  const date = new Date(epochSeconds * 1000);
  return (
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}`
  );
}

/** Seconds since the epoch -> "2025-01-31 14:03:22.125". */
export function formatDateTime(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined) return "";
  const date = new Date(epochSeconds * 1000);
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${formatClock(epochSeconds)}`;
}

/** [host, port] -> "host:port", with brackets around an IPv6 address. */
export function formatAddress(address) {
  if (!address) return "";
  const [host, port] = address;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
