import { createServer, type Server } from "node:http";
import type { Logger } from "../../logger";

/** Serves `read()` at /metrics on `port` (Prometheus' text format), until closed. */
export async function serveMetrics(port: number, read: () => Promise<string>, contentType: string, logger: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("metrics are at /metrics\n");
      return;
    }
    read().then(
      (body) => res.writeHead(200, { "content-type": contentType }).end(body),
      (err) => {
        logger.warn({ err }, "could not collect metrics");
        res.writeHead(500).end(String(err));
      },
    );
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, resolve));
  server.unref();
  const address = server.address();
  logger.info({ port: typeof address === "object" && address ? address.port : port }, "serving metrics at /metrics");
  return server;
}

