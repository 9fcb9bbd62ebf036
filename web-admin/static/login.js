/* proxyd admin: the login page. */
'use strict';

document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = document.getElementById('login-error');
  const btn = document.getElementById('login-submit');
  err.textContent = '';
  btn.disabled = true;
  try {
    await PX.api('POST', '/api/login', {
      user: document.getElementById('login-user').value,
      password: document.getElementById('login-password').value,
    });
    location.href = '/';
  } catch (e) {
    err.textContent = e.status === 429 ? 'Too many failed attempts: wait 5 minutes.' : e.message;
  } finally {
    btn.disabled = false;
  }
});
