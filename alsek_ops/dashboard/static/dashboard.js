// Keeps the live parts of a page fresh: every element with data-refresh="URL"
// has its content replaced by what URL returns, every data-every ms (3000).
// Served by the dashboard itself; the pages load nothing from elsewhere.
"use strict";
document.querySelectorAll("[data-refresh]").forEach((element) => {
  const every = Number(element.dataset.every || 3000);
  setInterval(async () => {
    try {
      const response = await fetch(element.dataset.refresh, { cache: "no-store" });
      if (response.ok) element.innerHTML = await response.text();
    } catch (error) {
      // The dashboard is restarting or the network blinked: try again next time.
    }
  }, every);
});
