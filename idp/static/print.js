// "Imprimer" buttons (data-print): the page's print dialog (a script file: the CSP forbids inline ones).
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
