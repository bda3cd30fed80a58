import type { Command } from 'commander';
export function registerExperimentCommands(_program: Command): void {}
