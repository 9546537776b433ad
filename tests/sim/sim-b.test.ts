/**
 * Simulator seeds, second half (see `./seeds.ts`).
 *
 * @module
 */
import { seedRange, SEEDS_PER_FILE } from "./seeds.ts";

seedRange(1 + SEEDS_PER_FILE);
