/**
 * A FIFO queue with O(1) push and shift, for the link's hot paths (events,
 * stream send queues). Internal.
 *
 * @module
 */

/** A first-in, first-out queue. */
export class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Number of items. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /**
   * Append an item.
   *
   * @param item The item.
   */
  push(item: T): void {
    this.#items.push(item);
  }

  /**
   * The first item, without removing it.
   *
   * @returns The item, or `undefined` when empty.
   */
  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /**
   * Remove and return the first item.
   *
   * @returns The item, or `undefined` when empty.
   */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head >= items.length) return undefined;
    const item = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Remove every item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
