/* proxyd admin: the login page, and the password change a first-run password must make
 * before anything else (the server refuses such a session everything else and sends its
 * pages here). */
'use strict';

/* Where to go after logging in: the page that sent the browser here (?next=), if it is a
 * plain path of this server, else the dashboard. */
function nextPage() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  return /^\/[A-Za-z0-9/_-]*$/.test(next) && !next.startsWith('//') ? next : '/';
}

function askNewPassword(session) {
  PX.useSession(session);
  PX.$('login-form').hidden = true;
  PX.$('passwd-form').hidden = false;
  PX.$('passwd-new').focus();
}

PX.$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = PX.$('login-error');
  const btn = PX.$('login-submit');
  err.textContent = '';
  btn.disabled = true;
  try {
    const s = await PX.api('POST', '/api/login', {
      user: PX.$('login-user').value,
      password: PX.$('login-password').value,
    });
    if (s.must_change_password) askNewPassword(s);
    else location.href = nextPage();
  } catch (e) {
    err.textContent = e.status === 429 ? 'Too many failed attempts: wait 5 minutes.' : e.message;
  } finally {
    btn.disabled = false;
  }
});

PX.$('passwd-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = PX.$('passwd-error');
  const btn = PX.$('passwd-submit');
  const password = PX.$('passwd-new').value;
  err.textContent = '';
  if (password !== PX.$('passwd-repeat').value) {
    err.textContent = 'The two passwords differ.';
    return;
  }
  btn.disabled = true;
  try {
    await PX.api('PUT', '/api/admins/' + encodeURIComponent(PX.user), {password});
    location.href = nextPage();
  } catch (e) {
    err.textContent = e.message;
  } finally {
    btn.disabled = false;
  }
});

// Back here with a session that still has to change its password (a reload, or a page that
// sent it here): ask again. A plain fetch: PX.api would send a 401 to this very page.
(async () => {
  const r = await fetch('/api/session', {credentials: 'same-origin'});
  if (!r.ok) return;
  const s = await r.json();
  if (s.must_change_password) askNewPassword(s);
})().catch(() => {});
