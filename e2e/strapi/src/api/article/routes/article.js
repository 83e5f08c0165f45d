'use strict';

// e2e: Strapi's default Content API routes for the article collection, at /api/articles. No role is
// granted them at bootstrap: the Public role gets 403, an API token (or a role granted the actions) reads.
const { factories } = require('@strapi/strapi');

module.exports = factories.createCoreRouter('api::article.article');
