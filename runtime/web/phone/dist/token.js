// The mobile token: taken from the link `baton phone` printed, then kept in localStorage so the
// page still works once the token is gone from the address bar (reload, home-screen bookmark).
//
// Invariant: the token is never written to the console or the DOM, and it leaves the address bar
// on load, so a screenshot, a shared tab or the browser history does not give it away.

const TOKEN_KEY = "baton.phoneToken";

/** Reads the token (from the URL first, else the one kept), or null when there is none. */
export function takeToken() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    try {
      localStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      // Storage can be off (private browsing); the token then lasts as long as the page.
    }
    params.delete("token");
    const query = params.toString();
    history.replaceState(history.state, "", location.pathname + (query ? `?${query}` : "") + location.hash);
    return fromUrl;
  }
  try {
    return localStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}
