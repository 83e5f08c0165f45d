'use strict';

// The admin panel is not built nor served (no build step). The admin API (/admin/login,
// /content-manager/...) is served regardless: the admin-channel tests use it with the admin of
// E2E_ADMIN_EMAIL (src/index.js). The admin secrets are required by Strapi at start-up: test-only
// defaults, overridable by env.
module.exports = ({ env }) => ({
  serveAdminPanel: env.bool('SERVE_ADMIN_PANEL', false),
  auth: {
    secret: env('ADMIN_JWT_SECRET', 'e2e-test-admin-jwt-secret-not-for-production'),
  },
  apiToken: {
    salt: env('API_TOKEN_SALT', 'e2e-test-api-token-salt'),
  },
  transfer: {
    token: {
      salt: env('TRANSFER_TOKEN_SALT', 'e2e-test-transfer-token-salt'),
    },
  },
  secrets: {
    encryptionKey: env('ENCRYPTION_KEY', 'e2e-test-encryption-key-0123456789'),
  },
  flags: {
    nps: false,
    promoteEE: false,
    docLinks: false,
  },
});
