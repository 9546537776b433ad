/**
 * Simulator seeds, first half (see `./seeds.ts`).
 *
 * @module
 */
import { seedRange } from "./seeds.ts";

seedRange(1);
