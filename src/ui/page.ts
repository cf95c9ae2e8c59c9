// A page of the dashboard: rendered into <main>, told when a topic it shows changed.
export type Topic = "fleet" | "campaigns" | "ca";

export interface Page {
  title: string;
  /** What it shows live: the dashboard reads only the topics an open page shows. */
  topics: Topic[];
  render(main: HTMLElement, params: URLSearchParams, arg?: string): Promise<void>;
  onChange?(topic: Topic): void;
  dispose?(): void;
}
