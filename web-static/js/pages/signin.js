// pages/signin.js: the sign-in view and the credentials a link may carry in its fragment (`#token=…` from
// `medic serve`, `#login=CODE` from `medic login`). Not a route: it shows whenever nobody is signed in.

/** Reads `#NAME=…` from the fragment and removes it from the URL (it must not linger in the address bar,
 *  history or a copied link). */
export function takeFromFragment(name) {
  const params = new URLSearchParams(location.hash.slice(1));
  const value = params.get(name);
  if (!value) return null;
  params.delete(name);
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  return value;
}

/**
 * The sign-in form over the shared context. `onToken(token)` signs in (the app connects); `show(message)`
 * brings the form back (sign-out, a refused token, a failed link).
 */
export function createSignIn(ctx, { onToken }) {
  const { $ } = ctx;

  function show(message = '') {
    $('app').hidden = true;
    $('identity').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message;
    $('token-input').focus();
  }

  /** `#login=CODE` is what `medic login` prints: a single-use code exchanged for a session token. */
  async function withCode(code) {
    try {
      const response = await fetch('/api/v1/session', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok && typeof body.token === 'string') { onToken(body.token); return; }
      show(body?.error?.message ?? 'This sign-in link did not work. Run `medic login` on the server for a new one.');
    } catch {
      show('The server could not be reached to use this sign-in link. Try again.');
    }
  }

  /** Takes a code or token from the fragment, if any, and signs in with it; true when there was one. */
  function fromFragment() {
    const code = takeFromFragment('login');
    const token = takeFromFragment('token');   // taken even beside a code: it must not stay in the URL
    if (code) withCode(code);
    else if (token) onToken(token);
    return !!(code || token);
  }

  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) { $('signin-error').textContent = 'Enter a token.'; return; }
    $('token-input').value = '';
    onToken(token);
  });

  return { show, fromFragment };
}
