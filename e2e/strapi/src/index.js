'use strict';

const fs = require('fs');
const path = require('path');

const USER_UID = 'plugin::users-permissions.user';
const ROLE_UID = 'plugin::users-permissions.role';
const PERMISSION_UID = 'plugin::users-permissions.permission';

// Set while the fixture users are created, so that the default audience is not applied to them:
// a fixture user whose audience is "" or null keeps it (the tests need users with no audience).
let seeding = false;

// DEFAULT_AUDIENCE: the audience a self-registered user (POST /api/auth/local/register) gets.
// Empty or unset: none (the proxy then denies that user everywhere).
const defaultAudience = () => (process.env.DEFAULT_AUDIENCE || '').trim();

const readFixture = (file) => {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const users = Array.isArray(raw) ? raw : raw.users;
  if (!Array.isArray(users)) {
    throw new Error(`${file}: expected a JSON array of users (or {"users": [...]})`);
  }
  for (const u of users) {
    if (!u || typeof u.username !== 'string' || typeof u.email !== 'string' || typeof u.password !== 'string') {
      throw new Error(`${file}: every user needs string username, email and password: ${JSON.stringify(u)}`);
    }
  }
  return users;
};

const ensureAdvancedSettings = async (strapi) => {
  // Registration allowed, no e-mail confirmation (so register answers with a jwt at once),
  // new users get the Authenticated role.
  const store = strapi.store({ type: 'plugin', name: 'users-permissions' });
  const current = (await store.get({ key: 'advanced' })) || {};
  const wanted = {
    ...current,
    unique_email: true,
    allow_register: true,
    email_confirmation: false,
    default_role: 'authenticated',
  };
  if (JSON.stringify(wanted) !== JSON.stringify(current)) {
    await store.set({ key: 'advanced', value: wanted });
  }
};

const ensurePermission = async (strapi, role, action) => {
  const found = await strapi.db
    .query(PERMISSION_UID)
    .findOne({ where: { action, role: role.id } });
  if (!found) {
    await strapi.db.query(PERMISSION_UID).create({ data: { action, role: role.id } });
    strapi.log.info(`[e2e] granted ${action} to role ${role.type}`);
  }
};

const seedUsers = async (strapi, role) => {
  const file = path.resolve(strapi.dirs.app.root, process.env.SEED_USERS_FILE || './seed/users.json');
  if (!fs.existsSync(file)) {
    if (process.env.SEED_USERS_FILE) throw new Error(`SEED_USERS_FILE ${file} does not exist`);
    strapi.log.warn(`[e2e] no seed file at ${file}: no users seeded`);
    return;
  }
  const users = readFixture(file);
  const userService = strapi.plugin('users-permissions').service('user');
  let created = 0;
  seeding = true;
  try {
    for (const u of users) {
      const email = u.email.toLowerCase();
      const existing = await strapi.db.query(USER_UID).findOne({
        where: { $or: [{ username: u.username }, { email }] },
      });
      if (existing) continue;
      await userService.add({
        username: u.username,
        email,
        password: u.password,
        audience: u.audience === undefined ? null : u.audience,
        confirmed: u.confirmed === undefined ? true : Boolean(u.confirmed),
        blocked: Boolean(u.blocked),
        provider: 'local',
        role: role.id,
      });
      created++;
    }
  } finally {
    seeding = false;
  }
  strapi.log.info(`[e2e] seeded ${created} new user(s) of ${users.length} from ${file}`);
};

// E2E_AUTHENTICATED_GRANTS: more Content API actions for the Authenticated role, comma separated
// action uids (e.g. plugin::users-permissions.user.update). Unknown uids fail the start: a typo
// must not leave a test running against a Strapi that silently grants nothing.
const extraGrants = () =>
  (process.env.E2E_AUTHENTICATED_GRANTS || '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const knownActions = (strapi) => {
  const perms = strapi.contentAPI && strapi.contentAPI.permissions;
  if (!perms || typeof perms.getActionsMap !== 'function') return null;
  const known = new Set();
  for (const [api, { controllers }] of Object.entries(perms.getActionsMap())) {
    for (const [controller, actions] of Object.entries(controllers)) {
      for (const action of actions) known.add(`${api}.${controller}.${action}`);
    }
  }
  return known;
};

const grantExtra = async (strapi, role) => {
  const grants = extraGrants();
  if (grants.length === 0) return;
  const known = knownActions(strapi);
  const unknown = known ? grants.filter((a) => !known.has(a)) : [];
  if (unknown.length > 0) {
    throw new Error(`E2E_AUTHENTICATED_GRANTS: unknown Content API action(s): ${unknown.join(', ')}`);
  }
  for (const action of grants) await ensurePermission(strapi, role, action);
};

// E2E_ADMIN_EMAIL + E2E_ADMIN_PASSWORD: a Strapi admin (super-admin role) created at bootstrap, for
// the tests of the admin channel (POST /admin/login, the content-manager API). Created only if no
// admin has that e-mail; both or neither must be set.
const ensureAdmin = async (strapi) => {
  const email = (process.env.E2E_ADMIN_EMAIL || '').trim().toLowerCase();
  const password = process.env.E2E_ADMIN_PASSWORD || '';
  if (!email && !password) return;
  if (!email || !password) throw new Error('E2E_ADMIN_EMAIL and E2E_ADMIN_PASSWORD must be set together');
  const users = strapi.service('admin::user');
  if (await users.exists({ email })) return;
  const superAdmin = await strapi.service('admin::role').getSuperAdmin();
  if (!superAdmin) throw new Error('admin super-admin role not found');
  await users.create({
    email,
    firstname: 'E2E',
    lastname: 'Admin',
    password, // the service hashes it
    isActive: true,
    registrationToken: null,
    roles: [superAdmin.id],
  });
  strapi.log.info(`[e2e] created admin ${email} (super admin)`);
};

const subscribeDefaultAudience = (strapi) => {
  strapi.db.lifecycles.subscribe({
    models: [USER_UID],
    beforeCreate(event) {
      if (seeding) return;
      const data = event.params.data;
      if (!data) return;
      const aud = defaultAudience();
      if (aud && (data.audience === undefined || data.audience === null || data.audience === '')) {
        data.audience = aud;
      }
    },
  });
};

module.exports = {
  async bootstrap({ strapi }) {
    subscribeDefaultAudience(strapi);
    await ensureAdvancedSettings(strapi);

    const role = await strapi.db.query(ROLE_UID).findOne({ where: { type: 'authenticated' } });
    if (!role) throw new Error('users-permissions Authenticated role not found');
    // Strapi grants this by default; make sure of it, the tests need GET /api/users/me.
    await ensurePermission(strapi, role, 'plugin::users-permissions.user.me');
    await grantExtra(strapi, role);
    await ensureAdmin(strapi);

    await seedUsers(strapi, role);
  },
};
