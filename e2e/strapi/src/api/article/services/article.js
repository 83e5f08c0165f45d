'use strict';

// e2e: Strapi's default service for the article collection.
const { factories } = require('@strapi/strapi');

module.exports = factories.createCoreService('api::article.article');
