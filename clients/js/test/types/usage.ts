// A typed use of the SDK, checked by `tsc --noEmit` (tests/unit/test_js_client_types.py): it
// compiles only while the generated types say what the gateway sends. The @ts-expect-error lines
// fail the check if the types ever stop catching these mistakes.

import {
  LiveState, VitrineError, createClient, watchLive,
  type LiveEvent, type LiveSnapshot, type WatchState,
} from "../../src/index.js";

const client = createClient({ baseUrl: "http://127.0.0.1:8000", token: () => null });

export async function example(): Promise<void> {
  const lives = await client.listLives({ status: "live" });
  const first = lives.items[0];
  const more: string | null | undefined = lives.next_cursor;
  void more;
  const title: string = first.title;
  // @ts-expect-error: a live has no "name", it has a title
  first.name;

  const created = await client.createLive({ title: "Soldes d'hiver", scheduled_at: null });
  // @ts-expect-error: a title is a string
  await client.createLive({ title: 3 });
  const page = await client.chatHistory(created.id, { limit: 20 });
  const texts: string[] = page.items.map((message) => message.message);
  void title, texts;

  try {
    await client.postChat(created.id, "Bonjour !");
  } catch (error) {
    if (error instanceof VitrineError && error.status === 429) {
      const wait: number | undefined = error.retryAfter;
      void wait;
    }
  }
}

const state = new LiveState();
const watch = watchLive("7d1e2f00-0000-4000-8000-000000000000", {
  baseUrl: "http://127.0.0.1:8000",
  since: 41,
  onSnapshot: (data: LiveSnapshot, seq: number) => {
    state.applySnapshot(data);
    const featured: string | undefined = data.featured_product?.name;
    void seq, featured;
  },
  onEvent: (event: LiveEvent) => {
    state.apply(event);
    switch (event.type) {
      case "chat.posted": {
        const who: string = event.data.message.display_name;
        void who;
        break;
      }
      case "product.featured": {
        const price: number | string = event.data.product.price;
        void price;
        break;
      }
      case "viewers.updated": {
        const current: number = event.data.current;
        // @ts-expect-error: viewers.updated carries figures, not a message
        event.data.message;
        void current;
        break;
      }
    }
    // @ts-expect-error: cart.added is not relayed to viewers
    if (event.type === "cart.added") return;
  },
  onState: (name: WatchState, detail) => {
    if (name === "stopped" && detail?.code === 4404) watch.close();
  },
});
watch.postChat("Hello");
const resumeFrom: number | null = watch.lastSeq;
void resumeFrom;
