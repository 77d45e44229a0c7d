/** Starts the example: `npm run build && node dist/examples/nestjs/main.js` (PORT, DATABASE_URL, ADMIN_TOKEN). */
import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { AppModule } from "./app.module";

export async function bootstrap(port = Number(process.env.PORT ?? 3000)) {
  const app = await NestFactory.create(AppModule, { logger: ["error", "warn"] });
  app.enableShutdownHooks(); // SIGTERM: the worker stops (tasks get their grace), then the DataSource closes
  await app.listen(port);
  return app;
}

if (require.main === module) {
  bootstrap().then(
    async (app) => console.log(`listening on ${await app.getUrl()}`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
