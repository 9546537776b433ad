/**
 * The slice of `bun:ffi` the Bun adapter uses, declared so the repo
 * type-checks without Bun's type package.
 *
 * @module
 */
declare module "bun:ffi" {
  type FFIType = "i32" | "ptr" | "void";
  export function dlopen<T extends Record<string, { args: FFIType[]; returns: FFIType }>>(
    path: string,
    symbols: T,
  ): { symbols: { [K in keyof T]: (...args: any[]) => unknown }; close(): void };
  export const read: { i32(ptr: number, offset: number): number };
}
