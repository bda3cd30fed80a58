#!/usr/bin/env node
// Runs lab.ts directly through tsx, so students can edit the lab and rerun without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../lab.ts');
