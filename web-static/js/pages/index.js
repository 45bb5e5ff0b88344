// pages/index.js: the registry of the page's views. A new feature (bugs, asks, incidents) adds its module to
// this list — its routes, its section of the page and its topics come with it; no other view changes.
//
// Order matters only for routes: the first registered pattern that fits an address wins.

import { createProposalList } from './proposal-list.js';
import { createProposalDetail } from './proposal-detail.js';
import { createNotFound } from './not-found.js';
import { createCodeSearch } from './code-search.js';
import { createBugList } from './bug-list.js';
import { createBugDetail } from './bug-detail.js';
import { createAsk } from './ask.js';
import { createIncidentList } from './incident-list.js';
import { createIncidentDetail } from './incident-detail.js';

/** Each entry makes one view over the shared context (see app.js for what a view may implement). */
export const PAGES = [createProposalList, createProposalDetail, createCodeSearch, createBugList, createBugDetail, createAsk, createIncidentList,
  createIncidentDetail, createNotFound];
