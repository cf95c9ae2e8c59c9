// Spec output, then the closing line CI reads: "N passed, N failed[, N skipped]".
const Mocha = require("mocha");
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      // Skips are reported on their own line so the last line is exactly "N passed, N failed".
      if (s.pending) process.stdout.write(`${s.pending} skipped (see the skip reasons above)\n`);
      process.stdout.write(`${s.passes} passed, ${s.failures} failed\n`);
    });
  }
}
module.exports = SummaryReporter;
