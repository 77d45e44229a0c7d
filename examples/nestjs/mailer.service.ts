import { Injectable } from "@nestjs/common";

/** A stand-in for a mail provider's client: an ordinary Nest singleton that a task resolves. */
@Injectable()
export class MailerService {
  readonly sent: { to: string; subject: string; id: string }[] = [];

  async send(to: string, subject: string): Promise<string> {
    const id = `mail_${this.sent.length + 1}`;
    this.sent.push({ to, subject, id });
    return id;
  }
}
