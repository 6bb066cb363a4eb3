import { Component } from '@angular/core';
import { RouterOutlet } from '@angular/router';

/** The SPA shell; features are lazy routes in libs/web/*. */
@Component({
  imports: [RouterOutlet],
  selector: 'fw-root',
  templateUrl: './app.html',
  styleUrl: './app.css',
})
export class App {}
