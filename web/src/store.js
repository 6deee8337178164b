// The fleet: hosts kept in this browser's localStorage, nowhere else.
const KEY = "zonesd.hosts";

export function loadHosts() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(v) ? v.filter((h) => h && h.name && h.url && h.token) : [];
  } catch {
    return [];
  }
}

export function saveHosts(hosts) {
  localStorage.setItem(KEY, JSON.stringify(hosts.map(({ name, url, token }) => ({ name, url, token }))));
}
