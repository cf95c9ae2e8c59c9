// Root hooks: temp directories are removed after the run.
import { cleanupTemps } from "./helpers.js";

export const mochaHooks = {
  afterAll(): void {
    cleanupTemps();
  },
};
