// A zod field that accepts "90s", "5m", "24h" (or seconds as a number) and yields milliseconds.
import * as z from "zod";
import { parseDuration } from "./duration.js";

export const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return typeof v === "number" ? v * 1000 : parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});
