'use strict';

// HOST/PORT: where Strapi listens. The e2e harness picks a free port on 127.0.0.1.
// APP_KEYS: Koa cookie keys. The defaults are test-only values; a real deployment sets its own.
module.exports = ({ env }) => ({
  host: env('HOST', '127.0.0.1'),
  port: env.int('PORT', 1337),
  app: {
    keys: env.array('APP_KEYS', ['e2e-test-app-key-1', 'e2e-test-app-key-2']),
  },
  // Strapi runs behind Traefik: let Koa trust X-Forwarded-* (client IP for Strapi's rate limiter,
  // proto for Secure cookies). STRAPI_PROXY=false to turn it off.
  proxy: {
    koa: env.bool('STRAPI_PROXY', true),
  },
  // No "new Strapi version" check against the npm registry at start-up.
  logger: {
    updates: {
      enabled: false,
    },
  },
  webhooks: {
    populateRelations: false,
  },
});
